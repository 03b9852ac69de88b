"""The simulator's docstring examples run and print what they claim.

`sim/` is not among pytest's `--doctest-modules` paths, so the examples are run here.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import sim

MODULES = sorted(info.name for info in pkgutil.iter_modules(sim.__path__, "sim."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_pass(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
