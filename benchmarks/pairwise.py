"""Pairwise engine benchmark: ``python benchmarks/pairwise.py [--quick] [--out DIR]``.

Thin wrapper; the logic lives in :mod:`rankguard.bench.pairwise` (also ``rankguard bench pairwise``).
"""

import sys

from rankguard.bench.pairwise import main

if __name__ == "__main__":
    sys.exit(main())
