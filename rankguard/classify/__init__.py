"""Multi-class learning under label noise: LDR-KL / ALDR-KL and baselines as recipes on the engine.

- :mod:`~rankguard.classify.noise`    — ``uniform:η`` / ``pairflip:η`` injection on training labels;
- :mod:`~rankguard.classify.data`     — registry-backed splits (clean test fold, noisy train/validation);
- :mod:`~rankguard.classify.models`   — :data:`MODELS` (the paper's FFNN as ``mlp``; a small CNN as ``cnn``);
- :mod:`~rankguard.classify.augment`  — random crop + flip of training images (``--augment``);
- :mod:`~rankguard.classify.recipes`  — :data:`LOSSES` (name -> loss, defaults, source) and :class:`ClassifyConfig`;
- :mod:`~rankguard.classify.trainer`  — :func:`train` (engine + run directory);
- :mod:`~rankguard.classify.suspects` — the suspected-label ranking;
- :mod:`~rankguard.classify.cli`      — ``rankguard classify train``.

The losses themselves live in :mod:`rankguard.functional.ldr` and :mod:`rankguard.losses.ldr`.
"""

from rankguard.classify.recipes import LOSSES, ClassifyConfig
from rankguard.classify.trainer import ClassifyResult, train

__all__ = ["LOSSES", "ClassifyConfig", "ClassifyResult", "train"]
