"""Pure tensor functions (no state, no ``nn.Module``): the exact all-pairs engine and one form per loss.

Every loss takes ``reduction`` in :data:`REDUCTIONS` (``'none'``, ``'mean'``, ``'sum'``), reduced by
:func:`reduce_loss`; the ``nn.Module`` forms in :mod:`rankguard.losses` only add state and defaults.
"""

from rankguard.functional.adaptive_rank import adaptive_rank_alpha, adaptive_rank_loss
from rankguard.functional.ap import SCORE_TRANSFORMS, check_soap_batch, check_soap_options, soap_loss
from rankguard.functional.auc import auc_loss
from rankguard.functional.cml import bpr_loss, covariance_regularizer, sfcml_loss, triplet_hinge_loss
from rankguard.functional.ldr import (
    aldr_kl_lambda,
    aldr_kl_loss,
    ce_loss,
    focal_loss,
    gce_loss,
    label_smoothing_loss,
    ldr_kl_loss,
    mae_loss,
    sce_loss,
)
from rankguard.functional.dpcml import (
    diversity_penalty,
    min_vector_distance,
    multi_vector_scores,
    nearest_vector,
    per_vector_scores,
    vector_diversity,
)
from rankguard.functional.pairwise import (
    SURROGATES,
    pairwise_loss,
    pairwise_loss_masked,
    pairwise_row_sums,
    pairwise_row_sums_grouped,
)
from rankguard.functional.contrastive import adv_info_nce_loss, info_nce_loss, kl_to_uniform
from rankguard.functional.reduction import REDUCTIONS, reduce_loss

__all__ = ["REDUCTIONS", "SCORE_TRANSFORMS", "SURROGATES", "auc_loss", "bpr_loss", "check_soap_batch",
           "check_soap_options", "covariance_regularizer", "diversity_penalty", "min_vector_distance",
           "multi_vector_scores", "nearest_vector", "pairwise_loss", "per_vector_scores", "pairwise_loss_masked",
           "pairwise_row_sums", "pairwise_row_sums_grouped", "reduce_loss", "sfcml_loss", "soap_loss",
           "triplet_hinge_loss", "vector_diversity"]
__all__ += ["aldr_kl_lambda", "aldr_kl_loss", "ce_loss", "focal_loss", "gce_loss", "label_smoothing_loss",
            "ldr_kl_loss", "mae_loss", "sce_loss"]
__all__ += ["adaptive_rank_alpha", "adaptive_rank_loss"]
__all__ += ["adv_info_nce_loss", "info_nce_loss", "kl_to_uniform"]
