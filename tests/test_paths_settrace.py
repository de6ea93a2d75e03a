"""The settrace recorder (Python 3.8-3.11) stops tracing code that has nothing left to show:
a code object every line of which has run gets no local tracer again, while one with an arm
not yet taken keeps it, and sees the arm when it runs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest

from codemod.recorder import FOLDER

sys.path.insert(0, str(FOLDER))
import _ddp_codemod_recorder as recorder

FRAMES: dict[str, Any] = {}


def straight(x: int) -> int:
    FRAMES["straight"] = sys._getframe()
    y = x + 1
    return y * 2


def branchy(flag: bool) -> int:
    FRAMES["branchy"] = sys._getframe()
    if flag:
        return 1
    return 0


def _lines(fn: Callable[..., Any]) -> list[int]:
    first = fn.__code__.co_firstlineno
    import inspect

    return [first + i for i in range(1, len(inspect.getsource(fn).splitlines()))]


@pytest.fixture
def paths() -> Any:
    if sys.gettrace() is not None:
        pytest.skip("another tracer is active (coverage, a debugger)")
    paths = recorder._Paths(10)
    paths.files[__file__] = "tests/test_paths_settrace.py"
    paths.hot.add(__file__)
    inst = recorder._Instance(0, paths, [], {})  # any weakly referenceable object will do
    paths.current = inst
    yield paths
    sys.settrace(None)


def _traced(paths: Any, call: Callable[[], Any]) -> None:
    sys.settrace(paths.tracer)
    try:
        call()
    finally:
        sys.settrace(None)


def test_code_whose_every_line_ran_gets_no_tracer_again(paths: Any):
    inst = paths.current
    _traced(paths, lambda: straight(1))
    assert set(_lines(straight)) <= inst.path_lines[straight.__code__]
    assert straight.__code__ in inst.path_done
    _traced(paths, lambda: straight(2))
    assert paths.tracer(FRAMES["straight"], "call", None) is None


def test_code_with_an_arm_not_taken_stays_traced_and_sees_it_later(paths: Any):
    inst = paths.current
    arm = branchy.__code__.co_firstlineno + 3  # `return 1`
    for _ in range(3):
        _traced(paths, lambda: branchy(False))
    assert branchy.__code__ not in inst.path_done
    assert arm not in inst.path_lines[branchy.__code__]
    assert paths.tracer(FRAMES["branchy"], "call", None) is not None
    _traced(paths, lambda: branchy(True))
    assert arm in inst.path_lines[branchy.__code__]
    assert branchy.__code__ in inst.path_done
    assert paths._nothing_to_see(inst)  # no forward of a module class was watched here
