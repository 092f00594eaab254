"""Modules imported on first use, so that a job which never touches torch never loads it.

``torch = lazy.module("torch")`` at the top of a module binds a stand-in; the first attribute
access (``torch.cat``) imports torch for real and returns its attribute. A table, figure or
map job that only calls the numpy functions of such a module then starts in a fraction of a
second instead of paying torch's import (2-4 s on a CPU). Decorators and default arguments
are evaluated at import time and must not touch the stand-in; annotations are strings
(``from __future__ import annotations``). :func:`is_tensor` tests for a tensor without
importing torch.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any


class _Deferred(ModuleType):
    """Stands in for a module until an attribute of it is first asked for."""

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self.__name__), attribute)


def module(name: str) -> ModuleType:
    """Module ``name``, imported when one of its attributes is first used (at once when it
    is already imported)."""
    return sys.modules.get(name) or _Deferred(name)


def loaded(name: str) -> bool:
    """Whether module ``name`` has been imported."""
    return name in sys.modules


def is_tensor(x: object) -> bool:
    """Whether ``x`` is a torch tensor; never imports torch (a tensor means it is loaded)."""
    return type(x).__module__.startswith("torch") and isinstance(x, sys.modules["torch"].Tensor)
