"""Target–decoy rescoring: PIN and TopPIC readers, competition + q-values, cross-validated rescoring, CLI."""

from rankguard.rescoring.plots import QVALUE_GRID, accepted_curve, plot_qvalue_curves
from rankguard.rescoring.readers import (MatchTable, RescoringInputError, concat_tables, detect_format, read_matches,
                                         read_pin, read_toppic)

__all__ = ["MatchTable", "RescoringInputError", "concat_tables", "detect_format", "read_matches", "read_pin",
           "read_toppic", "QVALUE_GRID", "accepted_curve", "plot_qvalue_curves"]
