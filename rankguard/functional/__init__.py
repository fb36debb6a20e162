"""Pure tensor functions (no state, no ``nn.Module``): the exact all-pairs engine and friends."""

from rankguard.functional.pairwise import (
    SURROGATES,
    pairwise_loss,
    pairwise_loss_masked,
    pairwise_row_sums,
    pairwise_row_sums_grouped,
)

__all__ = ["SURROGATES", "pairwise_loss", "pairwise_loss_masked", "pairwise_row_sums",
           "pairwise_row_sums_grouped"]
