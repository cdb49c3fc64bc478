"""Which deep-learning framework a notebook uses, read from its code (never from its outputs).

Fixes and hints on the scorecard name the framework's own call (``torch.save`` for PyTorch,
``model.save`` for Keras, ``joblib.dump`` for scikit-learn), so a Keras team is not told to
``torch.save``. Pure: reads source text, imports nothing of the student's.
"""

from __future__ import annotations

import re
from typing import Literal

__all__ = ["Framework", "framework_of"]

Framework = Literal["pytorch", "tensorflow", "sklearn"]

# `import torch`, `from torch import nn`, `import torchvision`; `import tensorflow as tf`,
# `from tensorflow import keras`, `import keras`; `from sklearn.svm import SVC`
_IMPORTS: tuple[tuple[Framework, re.Pattern[str]], ...] = (
    ("pytorch", re.compile(r"^\s*(?:import|from)\s+(?:torch|torchvision)\b", re.M)),
    ("tensorflow", re.compile(r"^\s*(?:import|from)\s+(?:tensorflow|keras|tf_keras)\b", re.M)),
    ("sklearn", re.compile(r"^\s*(?:import|from)\s+sklearn\b", re.M)),
)


def framework_of(code: str) -> Framework | None:
    """The framework the notebook's code imports, or None when it imports none of them.

    Args:
        code: the notebook's code cells' sources, joined.

    Returns:
        ``pytorch`` or ``tensorflow`` when one of them is imported (the one imported more often
        when both are, PyTorch on a tie), else ``sklearn`` when scikit-learn is, else None.
        scikit-learn ranks last because deep-learning notebooks import it for their metrics.
    """
    counts = {name: len(pattern.findall(code)) for name, pattern in _IMPORTS}
    deep: Framework = "tensorflow" if counts["tensorflow"] > counts["pytorch"] else "pytorch"
    if counts[deep]:
        return deep
    return "sklearn" if counts["sklearn"] else None
