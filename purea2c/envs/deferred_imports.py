"""Plotting libraries that gymnax imports at its top but uses only to draw, imported on use.

gymnax 1.x imports ``matplotlib.pyplot`` and ``seaborn`` (and with it pandas and scipy) at
the top of its environment modules, for their ``render`` functions only. That is about
150 MiB of host memory and 1.5-2 s of every process that imports gymnax, most of a cold
start on a CPU. While the gymnax adapter imports gymnax, `deferred` puts a stand-in in
``sys.modules`` for each of `DEFERRED` that is not imported yet; gymnax's modules bind the
stand-ins. The stand-ins leave ``sys.modules`` when the import ends, so any later import,
the user's or a renderer's, gets the real module, and the first attribute read on a
stand-in imports the real module and reads from it.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import types
from typing import Any, Iterator

DEFERRED = ("matplotlib", "matplotlib.pyplot", "matplotlib.colors", "seaborn")


class OnUse(types.ModuleType):
    """A stand-in for the module of its name: the real one is imported at the first read of
    an attribute the stand-in does not hold itself (its submodules' stand-ins it holds)."""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):  # the import system's probes (__path__, __file__, ...)
            raise AttributeError(attr)
        _withdraw()  # read during the import: never import a stand-in in place of the module
        return getattr(importlib.import_module(self.__name__), attr)


def _withdraw() -> None:
    for name in DEFERRED:
        if isinstance(sys.modules.get(name), OnUse):
            del sys.modules[name]


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Within the block, each of `DEFERRED` not yet imported is an `OnUse` stand-in."""
    stand_ins = {name: OnUse(name) for name in DEFERRED if name not in sys.modules}
    for name, module in stand_ins.items():
        parent, _, child = name.rpartition(".")
        if parent in stand_ins:  # `from matplotlib import colors` finds the stand-in
            setattr(stand_ins[parent], child, module)
    sys.modules.update(stand_ins)
    try:
        yield
    finally:
        _withdraw()
