"""bench/detect_accuracy.py's --param: a setting tried from the command line is the setting the
detector gets (a bool parsed with bool() made every "False" True, silently)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("detect_accuracy", REPO / "bench" / "detect_accuracy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("detect_accuracy", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("item", "expected"), [
    ("self_check=False", ("self_check", False)), ("self_check=true", ("self_check", True)),
    ("level_correction=0", ("level_correction", False)), ("low_z=3", ("low_z", 3.0)),
    ("neighbour_iterations=2", ("neighbour_iterations", 2)),
])
def test_param_values_take_the_fields_type(item: str, expected: tuple[str, object]) -> None:
    name, value = bench().param_value(item)
    assert (name, value) == expected and type(value) is type(expected[1])


def test_a_bool_that_is_not_one_is_refused() -> None:
    with pytest.raises(SystemExit, match="true or false"):
        bench().param_value("self_check=maybe")
