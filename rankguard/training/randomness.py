"""Every random source of a run in one object, so a checkpoint can save and restore all of them.

Randomness in rankguard flows from explicit generators (``torch.Generator`` for model
initialisation and tensor shuffles, ``numpy.random.Generator`` for samplers and index
permutations); nothing reads or seeds torch's, numpy's or Python's global state. A run builds one
:class:`Generators` from its seed, hands ``.torch`` / ``.numpy`` to the parts that draw, and the
engine stores :meth:`Generators.state_dict` in every checkpoint. Restoring writes the saved states
*into the same generator objects* that the model, objective and samplers already hold, which is
what makes a resumed run draw exactly the numbers an uninterrupted run would have drawn.

>>> g = Generators(0); state = g.state_dict()
>>> a = torch.rand(2, generator=g.torch).tolist(), g.numpy.random()
>>> g.load_state_dict(state)
>>> a == (torch.rand(2, generator=g.torch).tolist(), g.numpy.random())
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class Generators:
    """``torch`` and ``numpy`` generators seeded from one integer, plus any extra named ones.

    ``Generators(seed)`` seeds ``torch.Generator().manual_seed(seed)`` and
    ``numpy.random.default_rng(seed)`` — the same streams ``rankguard.seeding.make_generators``
    gives, so results do not depend on which helper built them.
    """

    def __init__(self, seed: int):
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"`seed` must be an integer, got {seed!r}")
        self.seed = int(seed)
        self.torch = torch.Generator().manual_seed(self.seed)
        self.numpy = np.random.default_rng(self.seed)
        self.extra: dict[str, torch.Generator | np.random.Generator] = {}

    def add(self, name: str, generator: torch.Generator | np.random.Generator) -> Any:
        """Track another generator (e.g. a per-process stream) so checkpoints include it."""
        if name in ("torch", "numpy") or name in self.extra:
            raise ValueError(f"generator {name!r} is tracked already")
        self.extra[name] = generator
        return generator

    def _all(self) -> dict[str, torch.Generator | np.random.Generator]:
        return {"torch": self.torch, "numpy": self.numpy, **self.extra}

    def state_dict(self) -> dict[str, Any]:
        """Plain, ``torch.save``-able states of every generator (``weights_only`` loadable)."""
        out: dict[str, Any] = {"seed": self.seed}
        for name, gen in self._all().items():
            out[name] = gen.get_state() if isinstance(gen, torch.Generator) else _np_state(gen)
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Write saved states into the existing generator objects (missing names raise)."""
        for name, gen in self._all().items():
            if name not in state:
                raise KeyError(f"checkpoint holds no state for generator {name!r}")
            if isinstance(gen, torch.Generator):
                gen.set_state(state[name])
            else:
                gen.bit_generator.state = _np_state_from(state[name])


def _np_state(gen: np.random.Generator) -> dict[str, Any]:
    # numpy's PCG64 state holds Python ints beyond 64 bits; strings keep them exact and weights_only-safe
    s = gen.bit_generator.state
    return {"bit_generator": s["bit_generator"], "state": {k: str(v) for k, v in s["state"].items()},
            "has_uint32": int(s["has_uint32"]), "uinteger": int(s["uinteger"])}


def _np_state_from(saved: dict[str, Any]) -> dict[str, Any]:
    return {"bit_generator": saved["bit_generator"], "state": {k: int(v) for k, v in saved["state"].items()},
            "has_uint32": int(saved["has_uint32"]), "uinteger": int(saved["uinteger"])}
