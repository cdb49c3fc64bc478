"""The baseline model of a reference skeleton, one per framework, between nbgrader's solution
markers: the code a coach replaces with the challenge's own model.

Each cell reads ``X_train``, ``y_train``, ``X_val``, ``y_val`` (uint8 images ``(N, SIDE, SIDE, 3)``
and class indices), ``PROFILE`` (``ci``: a short schedule), ``DEVICE`` and ``MODEL_DIR``, and
defines ``HISTORY`` (training and validation loss per epoch), saves the best model under
``MODEL_DIR`` and defines ``predict_batch(batch) -> class indices``.
"""

from __future__ import annotations

__all__ = ["FRAMEWORKS", "model_cell"]

_SKLEARN = '''### BEGIN SOLUTION
import joblib
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import log_loss
from sklearn.preprocessing import StandardScaler


def features(batch):
    """uint8 images (N, SIDE, SIDE, 3) -> the pixels of 16 x 16 thumbnails, 0..1."""
    small = batch.reshape(len(batch), 16, SIDE // 16, 16, SIDE // 16, 3).mean(axis=(2, 4))
    return small.reshape(len(batch), -1) / 255


scaler = StandardScaler().fit(features(X_train))
F_train, F_val = scaler.transform(features(X_train)), scaler.transform(features(X_val))
model = SGDClassifier(loss="log_loss", alpha=1e-3, random_state=0)
every = np.arange(len(CLASS_NAMES))
HISTORY = {"loss": [], "val_loss": []}
for epoch in range(5 if PROFILE == "ci" else 30):
    model.partial_fit(F_train, y_train, classes=every)
    HISTORY["loss"].append(log_loss(y_train, model.predict_proba(F_train), labels=every))
    HISTORY["val_loss"].append(log_loss(y_val, model.predict_proba(F_val), labels=every))
os.makedirs(MODEL_DIR, exist_ok=True)
joblib.dump((scaler, model), os.path.join(MODEL_DIR, "model.joblib"))


def predict_batch(batch):
    return model.predict(scaler.transform(features(batch)))
### END SOLUTION'''

_PYTORCH = '''### BEGIN SOLUTION
import torch
from torch import nn

torch.manual_seed(0)
device = torch.device("cuda" if DEVICE == "cuda" and torch.cuda.is_available() else "cpu")


def tensors(batch):
    return torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float().div(255)


def block(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]


model = nn.Sequential(*block(3, 32), *block(32, 64), *block(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Linear(128, len(CLASS_NAMES))).to(device)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()
x_train, t_train = tensors(X_train), torch.from_numpy(y_train)
x_val, t_val = tensors(X_val), torch.from_numpy(y_val)
HISTORY = {"loss": [], "val_loss": []}
best = float("inf")
os.makedirs(MODEL_DIR, exist_ok=True)
for epoch in range(3 if PROFILE == "ci" else 20):
    model.train()
    order, total = torch.randperm(len(x_train)), 0.0
    for start in range(0, len(order), 64):
        idx = order[start:start + 64]
        xb = x_train[idx].to(device)
        xb = torch.where(torch.rand(len(xb), 1, 1, 1, device=device) < 0.5, xb.flip(3), xb)  # mirrored at random
        optimizer.zero_grad()
        loss = loss_fn(model(xb), t_train[idx].to(device))
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
    model.eval()
    with torch.no_grad():
        val_loss = sum(loss_fn(model(x_val[s:s + 256].to(device)), t_val[s:s + 256].to(device)).item()
                       * len(x_val[s:s + 256]) for s in range(0, len(x_val), 256)) / len(x_val)
    HISTORY["loss"].append(total / len(x_train))
    HISTORY["val_loss"].append(val_loss)
    print(f"epoch {epoch + 1}: training loss {HISTORY['loss'][-1]:.3f}, validation loss {val_loss:.3f}")
    if val_loss < best:
        best = val_loss
        torch.save(model.state_dict(), os.path.join(MODEL_DIR, "best.pt"))
model.load_state_dict(torch.load(os.path.join(MODEL_DIR, "best.pt")))
model.eval()


def predict_batch(batch):
    with torch.no_grad():
        return np.concatenate([model(tensors(batch[s:s + 256]).to(device)).argmax(1).cpu().numpy()
                               for s in range(0, len(batch), 256)])
### END SOLUTION'''

_TENSORFLOW = '''### BEGIN SOLUTION
from tensorflow import keras

keras.utils.set_random_seed(0)
model = keras.Sequential([
    keras.Input((SIDE, SIDE, 3)),
    keras.layers.Rescaling(1 / 255),
    keras.layers.RandomFlip("horizontal"),
    keras.layers.Conv2D(32, 3, padding="same", activation="relu"), keras.layers.MaxPooling2D(),
    keras.layers.Conv2D(64, 3, padding="same", activation="relu"), keras.layers.MaxPooling2D(),
    keras.layers.Conv2D(128, 3, padding="same", activation="relu"), keras.layers.GlobalAveragePooling2D(),
    keras.layers.Dense(len(CLASS_NAMES), activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
os.makedirs(MODEL_DIR, exist_ok=True)
best = keras.callbacks.ModelCheckpoint(os.path.join(MODEL_DIR, "best.keras"), save_best_only=True)
HISTORY = model.fit(X_train, y_train, validation_data=(X_val, y_val), epochs=3 if PROFILE == "ci" else 20,
                    batch_size=64, callbacks=[best], verbose=2)
model = keras.models.load_model(os.path.join(MODEL_DIR, "best.keras"))


def predict_batch(batch):
    return model.predict(batch, verbose=0).argmax(axis=1)
### END SOLUTION'''

_CELLS = {"scikit-learn": _SKLEARN, "pytorch": _PYTORCH, "tensorflow": _TENSORFLOW}
FRAMEWORKS = tuple(_CELLS)


def model_cell(framework: str) -> str:
    """The marked baseline cell of ``framework`` (one of :data:`FRAMEWORKS`).

    Raises:
        KeyError: an unknown framework.
    """
    return _CELLS[framework]
