"""Cold-start recommendation: side features, cold splits, DropoutNet over MF / CML / DPCML, cold evaluation.

- :mod:`~rankguard.recsys.coldstart.splits` -- :class:`ColdSplit`, :func:`cold_split`, :func:`load_cold_split`;
- :mod:`~rankguard.recsys.coldstart.dropoutnet` -- the :class:`DropoutNet` model and its objectives;
- :mod:`~rankguard.recsys.coldstart.evaluate` -- warm / cold-user / cold-item evaluation and the baselines;
- :mod:`~rankguard.recsys.coldstart.train` -- :func:`train_cold`, the pre-training and joint regimes.
"""

from rankguard.recsys.coldstart.splits import ColdSplit, cold_split, load_cold_split, parse_cold_start

__all__ = ["ColdSplit", "cold_split", "load_cold_split", "parse_cold_start"]
