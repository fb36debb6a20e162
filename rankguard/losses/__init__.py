"""``nn.Module`` losses: thin wrappers over :mod:`rankguard.functional` that hold defaults and state."""

from rankguard.losses.auc import AUCLoss

__all__ = ["AUCLoss"]

try:  # ap.py lands separately; the package must import before it exists
    from rankguard.losses.ap import APLoss  # noqa: F401
except ImportError:
    pass
else:
    __all__.append("APLoss")
