"""The probe's factory protocol: load `MODULE:FACTORY`, call it, check what it returned.

A factory is user code that builds what one training step needs, on CPU, the same way on
every call (the probe seeds before each call):

    def make():
        return {
            "model": model,                       # torch.nn.Module with trainable parameters
            "batch": lambda step, rank: ...,      # inputs; a pure function of (step, rank)
            "loss": lambda model, batch: ...,     # runs the forward(s), returns a scalar tensor
            "optimizer": lambda params: ...,      # optional; SGD(lr=0.01) when left out
        }

An object with those attributes works as well as a mapping. `loss` gets the DDP wrapper,
so a step may call it more than once. The parent validates a factory with this module before
any worker starts, and every worker loads it by file path (it must not import `codemod`, whose
name a user's repo may shadow): stdlib only at import time, torch imported when needed.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Callable

DEFAULT_LR = 0.01
REQUIRED = ("model", "batch", "loss")


class FactoryError(Exception):
    """What is wrong with the factory, in one line."""


@dataclass(frozen=True)
class Factory:
    target: str  # as the user wrote it, for messages
    function: Callable[[], Any]
    path: tuple[str, ...]  # folders first on sys.path while user code imports things


@dataclass
class Setup:
    model: Any  # torch.nn.Module
    batch: Callable[[int, int], Any]
    loss: Callable[[Any, Any], Any]
    optimizer: Callable[[Any], Any]


def split_target(target: str) -> tuple[str, str]:
    """`pkg.mod:make` or `path/to/mod.py:make` -> (module part, attribute)."""
    module, sep, attr = target.rpartition(":")
    if not sep or not module or not attr.isidentifier():
        raise FactoryError(f"{target!r} is not MODULE:FACTORY (e.g. tools/probe.py:make)")
    return module, attr


def _module_name(module: str, cwd: str) -> tuple[str, tuple[str, ...]]:
    """(importable name, folders first on sys.path) for a dotted name or a .py path.

    A dotted name imports from cwd, like `python -m`; a path imports the way `python PATH`
    runs it, its own folder first, and then cwd, so `from detector import ...` next to the
    factory and `from damo.config import ...` from the repo root both work.
    """
    if not (module.endswith(".py") or "/" in module or os.sep in module):
        return module, (cwd,)
    path = os.path.abspath(os.path.join(cwd, module))
    if not os.path.isfile(path) or not path.endswith(".py"):
        raise FactoryError(f"cannot import {module}: no such file")
    stem = os.path.basename(path)[:-3]
    if not stem.isidentifier():
        raise FactoryError(f"cannot import {module}: {stem!r} is not a module name")
    return stem, (os.path.dirname(path), cwd)


@contextlib.contextmanager
def first_on_path(folders: tuple[str, ...]) -> Iterator[None]:
    """Put `folders` first on sys.path for a while, then take them off again."""
    sys.path[:0] = folders
    try:
        yield
    finally:
        for folder in folders:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder)


def load(target: str, cwd: str) -> Factory:
    """Import MODULE and find FACTORY in it; FactoryError says what went wrong."""
    module, attr = split_target(target)
    name, path = _module_name(module, cwd)
    with first_on_path(path):
        try:
            mod = importlib.import_module(name)
        except Exception as exc:
            raise FactoryError(f"cannot import {module}: {_one_line(exc)}") from None
    function = getattr(mod, attr, None)
    if function is None:
        raise FactoryError(f"{module} has no attribute {attr!r}")
    if not callable(function):
        raise FactoryError(f"{target} is not callable")
    return Factory(target, function, path)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _field(made: Any, key: str) -> Any:
    if isinstance(made, Mapping):
        return made.get(key)
    return getattr(made, key, None)


def _sgd(params: Any) -> Any:
    import torch

    return torch.optim.SGD(params, lr=DEFAULT_LR)


def build(factory: Factory) -> Setup:
    """Call the factory (its import path in place, for lazy imports) and check its shape."""
    import torch

    target = factory.target
    with first_on_path(factory.path):
        try:
            made = factory.function()
        except Exception as exc:
            raise FactoryError(f"{target} raised {_one_line(exc)}") from None
    missing = [k for k in REQUIRED if _field(made, k) is None]
    if missing:
        raise FactoryError(
            f"{target} returned {type(made).__name__} without {', '.join(missing)}: "
            "return a dict (or object) with model, batch, loss and optionally optimizer"
        )
    model, batch, loss = (_field(made, k) for k in REQUIRED)
    optimizer = _field(made, "optimizer") or _sgd
    if not isinstance(model, torch.nn.Module):
        raise FactoryError(f"{target}: model is a {type(model).__name__}, not a torch.nn.Module")
    for key, value in (("batch", batch), ("loss", loss), ("optimizer", optimizer)):
        if not callable(value):
            raise FactoryError(f"{target}: {key} is not callable")
    if not any(p.requires_grad for p in model.parameters()):
        raise FactoryError(f"{target}: the model has no trainable parameters")
    return Setup(model, batch, loss, optimizer)


def same(a: Any, b: Any) -> bool:
    """Equal nested batches: tensors bit for bit, containers item by item."""
    import torch

    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.shape == b.shape
            and a.dtype == b.dtype
            and bool(torch.equal(a, b) or (a.is_floating_point() and _same_nan(a, b)))
        )
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    try:
        return bool(a == b)
    except Exception:
        return False


def _same_nan(a: Any, b: Any) -> bool:
    import torch

    return bool(torch.equal(torch.nan_to_num(a, nan=0.0), torch.nan_to_num(b, nan=0.0))) and bool(
        torch.equal(a.isnan(), b.isnan())
    )


def check_batches(setup: Setup, target: str) -> None:
    """batch(step, rank) must not depend on global state: run A and run B must see the same."""
    try:
        first, second = setup.batch(0, 0), setup.batch(0, 0)
    except Exception as exc:
        raise FactoryError(f"{target}: batch(0, 0) raised {_one_line(exc)}") from None
    if not same(first, second):
        raise FactoryError(
            f"{target}: batch(0, 0) gave different data on two calls; "
            "derive it from (step, rank) only, e.g. torch.Generator().manual_seed(...)"
        )


def seed(value: int) -> None:
    """Seed every generator a model build or a forward may draw from."""
    import random

    import torch

    random.seed(value)
    torch.manual_seed(value)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(value)
