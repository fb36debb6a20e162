"""Registries: name -> component, one per kind (models, objectives, samplers, datasets, recipes).

A registry replaces an if-chain over names. Adding a component is one decorator (or one
``register`` call) beside its definition; the CLI reads its choices from :meth:`Registry.names`,
so ``--help`` always lists what is registered.

>>> MODELS = Registry("model")
>>> @MODELS.register("linear")
... class Linear: ...
>>> MODELS.get("linear").__name__, MODELS.names()
('Linear', ['linear'])
>>> MODELS.get("mlp")
Traceback (most recent call last):
...
KeyError: "unknown model 'mlp'; known: linear"
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of components of one ``kind`` (used in error messages).

    Names are case-insensitive (stored lower-case). Registering a taken name raises, so two
    components never silently shadow each other.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """``REG.register("name", obj)`` or ``@REG.register("name")`` above a definition."""
        key = str(name).lower()

        def add(item: T) -> T:
            if key in self._items:
                raise ValueError(f"{self.kind} {key!r} is registered already")
            self._items[key] = item
            return item

        return add(obj) if obj is not None else add

    def get(self, name: str) -> T:
        """The component registered as ``name``; an unknown name lists the registered ones."""
        key = str(name).lower()
        if key not in self._items:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return self._items[key]

    __getitem__ = get

    def names(self) -> list[str]:
        """Registered names, sorted (what ``--help`` shows)."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, T]]:
        return [(k, self._items[k]) for k in self.names()]

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"
