"""Collaborative ranking: interaction data, splits and the full-ranking evaluator.

Models, samplers and the trainer live in sibling modules (``rankguard.recsys.models`` and so on)
and are imported from there; this package namespace re-exports only the data layer.

>>> from rankguard.recsys import load_dataset, ratio_split, Evaluator
"""

from rankguard.recsys.data import (
    Interactions,
    Split,
    binary_union,
    build_interactions,
    filter_min_interactions,
    load_dataset,
    load_fixed_split,
    read_csv,
    read_inter,
    read_movielens,
    read_users_dat,
)
from rankguard.recsys.evaluator import Evaluator
from rankguard.recsys.splits import leave_one_out, ratio_split, temporal_split

__all__ = [
    "Interactions", "Split", "binary_union", "build_interactions", "filter_min_interactions", "load_dataset",
    "load_fixed_split", "read_csv", "read_inter", "read_movielens", "read_users_dat",
    "Evaluator", "leave_one_out", "ratio_split", "temporal_split",
]
