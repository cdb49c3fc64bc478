"""The public view a notebook sees as ``DATA_DIR``: a *copy* of the public data (a symlink would
let a kernel follow it back to the labelled folders), with the prepared views (padded squares,
Kaggle's layouts), the extra folders, the added class's public files and MNIST's training part.
"""

from __future__ import annotations

import logging
import random
import shutil
from pathlib import Path

from grader.core import Challenge, DataError, PreparedView, Settings
from grader.data.labelscsv import public_csv_text
from grader.data.mnist import write_mnist_view
from grader.data.splits import Listing, added_public, list_dataset
from grader.data.store import SHUFFLE_SEED, build_atomically, digest

__all__ = ["ensure_public_view"]

log = logging.getLogger(__name__)


def _pad_to_square(src: Path, dst: Path, view: PreparedView) -> None:
    from PIL import Image

    with Image.open(src) as opened:
        if opened.mode in ("RGBA", "LA") or (opened.mode == "P" and "transparency" in opened.info):
            rgba = opened.convert("RGBA")
            im = Image.new("RGB", rgba.size, view.background)
            im.paste(rgba, mask=rgba.getchannel("A"))
        else:
            im = opened.convert("RGB")
        im.thumbnail((view.size, view.size), Image.Resampling.LANCZOS)
        canvas = Image.new("RGB", (view.size, view.size), view.background)
        canvas.paste(im, ((view.size - im.width) // 2, (view.size - im.height) // 2))
        canvas.save(dst.with_suffix(".png"))


def _kaggle_view(tmp: Path, view: PreparedView, public: tuple[tuple[str, str], ...],
                 source: Path) -> None:
    """Kaggle's CIFAR-10 layout: ``train/<id>.png`` and ``trainLabels.csv`` (``id,label``)."""
    order = list(public)
    random.Random(SHUFFLE_SEED).shuffle(order)
    (tmp / view.name / "train").mkdir(parents=True)
    rows = ["id,label"]
    for number, (entry, label) in enumerate(order, 1):
        shutil.copyfile(source / entry, tmp / view.name / "train" / f"{number}{Path(entry).suffix}")
        rows.append(f"{number},{label}")
    (tmp / view.name / "trainLabels.csv").write_text("\n".join(rows) + "\n")


def ensure_public_view(settings: Settings, challenge: Challenge, *,
                       listing: Listing | None = None, public_only: bool = False) -> Path:
    """Build (once, cached) the data folder a notebook receives as ``DATA_DIR``.

    Layout: ``DATA_DIR/<source>/<entry>`` (copies of every public file: ``<class>/<file>``, or
    ``train/<class>/<file>``; for ``labels-csv``, ``<images>/<file>`` and the labels CSV with the
    public images' rows only, :func:`grader.data.labelscsv.public_csv_text`), each prepared view
    under ``DATA_DIR/<view>/``, and each ``extra`` folder as it is. Nothing of the hidden test set is copied.

    Args:
        settings: the grader's settings (data and cache folders).
        challenge: whose view to build.
        listing: the dataset's listing (default: :func:`list_dataset`); its ``public`` entries
            are copied.
        public_only: the data folder may hold only the public data (``grader data export``):
            the hidden and reserved files of the added class need not be present.

    Raises:
        DataError: the source data is missing or incomplete.
    """
    ds = challenge.dataset
    data_dir = settings.require_data_dir()
    listing = listing or list_dataset(data_dir, challenge, public_only=public_only)
    missing = [e for e in ds.extra if not (data_dir / e).is_dir()]
    if missing:
        raise DataError(f"folders missing from the data directory: {', '.join(missing)}",
                        path=data_dir, fix="restore the full datasets folder")
    views = [f"{v.name}:{v.kind}:{v.size}:{v.background}" for v in ds.prepared_views]
    added = ds.added_class
    added_names = added_public(data_dir, challenge, public_only=public_only)
    mnist = [f"mnist:{ds.mnist.source}:{ds.mnist.view}"] if ds.mnist is not None else []
    key = digest([ds.source, str(ds.raw_view), *views, *ds.extra, *added_names, *(e for e, _ in listing.hidden),
                   *(e for e, _ in listing.public), *mnist])
    target = settings.cache_dir / "views" / f"{ds.source}-{key}"
    source = data_dir / ds.source

    def build(tmp: Path) -> None:
        log.info("building the public view of %s in %s", ds.source, target)
        for entry, _ in listing.public:
            if ds.raw_view:
                out = tmp / ds.source / entry
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source / entry, out)
            for view in ds.prepared_views:
                if view.kind == "pad":
                    padded = tmp / view.name / entry
                    padded.parent.mkdir(parents=True, exist_ok=True)
                    _pad_to_square(source / entry, padded, view)
        if ds.raw_view and ds.layout == "labels-csv" and ds.labels is not None:  # the CSV less the hidden rows
            (tmp / ds.source / ds.labels).parent.mkdir(parents=True, exist_ok=True)
            (tmp / ds.source / ds.labels).write_text(
                public_csv_text(data_dir, ds, [e for e, _ in listing.public]), encoding="utf-8")
        for view in ds.prepared_views:
            if view.kind == "kaggle":
                _kaggle_view(tmp, view, listing.public, source)
            elif view.kind == "kaggle-csv":
                from grader.data.idx import kaggle_csv_view  # here: idx imports numpy (0.1 s of start-up)

                kaggle_csv_view(tmp, view, listing.public, data_dir, ds)
        for extra in ds.extra:
            shutil.copytree(data_dir / extra, tmp / extra)
        if added is not None:
            (tmp / added.source).mkdir(parents=True)
            for name in added_names:
                shutil.copyfile(data_dir / added.source / name, tmp / added.source / name)
        if ds.mnist is not None:  # its training part only (grader.data.mnist)
            write_mnist_view(tmp, data_dir, ds.mnist)

    return build_atomically(target, build)
