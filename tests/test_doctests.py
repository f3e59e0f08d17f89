"""The runnable examples in speaker_core's docstrings run and give what they show."""
import doctest
import importlib
import pkgutil

import pytest

import speaker_core

MODULES = sorted(m.name for m in pkgutil.iter_modules(speaker_core.__path__) if m.name != "__main__")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(f"speaker_core.{name}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in speaker_core.{name}"


def test_the_examples_exist():
    # the modules that document themselves by example keep doing so
    counts = {n: doctest.testmod(importlib.import_module(f"speaker_core.{n}"), verbose=False).attempted
              for n in ("audio", "augment", "scoring", "model", "decoder")}
    assert all(c > 0 for c in counts.values()), counts
