"""``nn.Module`` losses: thin wrappers over :mod:`rankguard.functional` that hold defaults and state."""

from rankguard.losses.ap import APLoss
from rankguard.losses.auc import AUCLoss
from rankguard.losses.cml import BPRLoss, CMLLoss, SFCMLLoss

__all__ = ["AUCLoss", "APLoss", "CMLLoss", "BPRLoss", "SFCMLLoss"]
