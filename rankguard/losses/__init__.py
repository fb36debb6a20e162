"""``nn.Module`` losses: thin wrappers over :mod:`rankguard.functional` that hold defaults and state."""

from rankguard.losses.adaptive_rank import AdaptiveRankLoss
from rankguard.losses.ap import APLoss
from rankguard.losses.auc import AUCLoss
from rankguard.losses.cml import BPRLoss, CMLLoss, SFCMLLoss
from rankguard.losses.contrastive import AdvInfoNCELoss, InfoNCELoss
from rankguard.losses.ldr import (ALDRKLLoss, CrossEntropyLoss, FocalLoss, GCELoss, LabelSmoothingLoss, LDRKLLoss,
                                  MAELoss, SCELoss)

__all__ = ["AUCLoss", "APLoss", "CMLLoss", "BPRLoss", "SFCMLLoss"]
__all__ += ["LDRKLLoss", "ALDRKLLoss", "CrossEntropyLoss", "LabelSmoothingLoss", "FocalLoss", "GCELoss",
            "SCELoss", "MAELoss"]
__all__ += ["AdaptiveRankLoss"]
__all__ += ["InfoNCELoss", "AdvInfoNCELoss"]
