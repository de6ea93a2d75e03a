"""The probe's factory protocol: load `MODULE:FACTORY`, call it, check what it returned.

A factory is user code that builds what one training step needs, on CPU, the same way on
every call (the probe seeds before each call):

    def make():
        return {
            "model": model,                       # torch.nn.Module with trainable parameters
            "batch": lambda step, rank: ...,      # inputs; a pure function of (step, rank)
            "loss": lambda model, batch, step: ...,  # the forward(s); returns a scalar tensor
            "optimizer": lambda params, model: ...,  # optional; SGD(lr=0.01) when left out
        }

An object with those attributes works as well as a mapping. `loss` gets the DDP wrapper,
so a step may call it more than once; `loss(model, batch)` and `optimizer(params)` work too
(the signature says which). `optimizer` gets the bare model, for parameter groups by name.
The parent validates a factory with this module before any worker starts, and every worker
loads it by file path (it must not import `codemod`, whose name a user's repo may shadow):
stdlib only at import time, torch imported when needed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import importlib
import inspect
import os
import re
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
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
    loss: Callable[[Any, Any, int], Any]  # (ddp, batch, step), whatever the user's takes
    optimizer: Callable[[Any, Any], Any]  # (params, bare model), whatever the user's takes
    environ: dict[str, str] = field(default_factory=dict)  # what make() read from os.environ


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
    with first_on_path(factory.path), recording_environ() as environ:
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
    return Setup(
        model,
        batch,
        _widen(loss, 3, f"{target}: loss must take (model, batch) or (model, batch, step)"),
        _widen(optimizer, 2, f"{target}: optimizer must take (params) or (params, model)"),
        environ.read,
    )


def _binds(function: Callable[..., Any], count: int) -> bool | None:
    """Whether `function` takes `count` positional arguments; None: no signature to read."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(*range(count))
    except TypeError:
        return False
    return True


def _widen(function: Callable[..., Any], count: int, message: str) -> Callable[..., Any]:
    """`function` as one that takes `count` arguments, dropping the last one it does not want.

    The protocol grew an argument (loss's step, optimizer's model); older factories keep
    working, and the signature, not a call that might fail halfway, says which is which.
    """
    full = _binds(function, count)
    if full is not False:  # it takes them all, or (a builtin) it cannot tell: try all
        return function
    if not _binds(function, count - 1):
        raise FactoryError(message)

    def fewer(*args: Any) -> Any:
        return function(*args[: count - 1])

    return fewer


class Uncomparable(Exception):
    """A batch holds something the digest cannot see into; the message names its type."""


_VALUE_TYPES = (type(None), bool, int, float, complex, str, bytes, enum.Enum)


def digest(value: Any) -> str:
    """A sha256 of a batch: every tensor's dtype, shape and bytes, and the structure around them.

    It walks lists, tuples, dicts, sets, dataclasses and plain objects' `__dict__` (and
    `__slots__`), so a detection `BoxList` without `__eq__` compares by its tensors; runs in
    different processes compare batches by this string. Uncomparable names what it met.
    """
    h = hashlib.sha256()
    _feed(h, value, "batch", set())
    return h.hexdigest()


def _feed(h: Any, value: Any, where: str, seen: set[int]) -> None:
    torch = sys.modules.get("torch")
    numpy = sys.modules.get("numpy")
    kind = type(value)
    name = f"{kind.__module__}.{kind.__qualname__}"
    if torch is not None and isinstance(value, torch.Tensor):
        data = value.detach()
        if data.layout != torch.strided:
            data = data.to_dense()
        data = data.cpu().contiguous().reshape(-1)
        h.update(f"T{data.dtype}{tuple(value.shape)}:".encode())
        raw = data.view(torch.uint8).numpy().tobytes() if numpy else repr(data.tolist()).encode()
        h.update(raw)
        return
    if numpy is not None and isinstance(value, numpy.ndarray) and value.dtype != object:
        h.update(f"N{value.dtype}{value.shape}:".encode() + value.tobytes())
        return
    if isinstance(value, _VALUE_TYPES) or (
        torch is not None and isinstance(value, (torch.dtype, torch.device))
    ):
        h.update(f"V{name}:{value!r};".encode())
        return
    if id(value) in seen:
        h.update(b"cycle;")
        return
    seen.add(id(value))
    h.update(f"<{name}".encode())
    if isinstance(value, Mapping):
        for key, item in value.items():
            _feed(h, key, where, seen)
            _feed(h, item, f"{where}[{key!r}]", seen)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _feed(h, item, f"{where}[{i}]", seen)
    elif isinstance(value, (set, frozenset)):
        h.update("".join(sorted(digest(item) for item in value)).encode())
    elif numpy is not None and isinstance(value, numpy.ndarray):  # dtype=object
        _feed(h, value.tolist(), where, seen)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _feed(h, f.name, where, seen)
            _feed(h, getattr(value, f.name, None), f"{where}.{f.name}", seen)
    elif _attributes(value) is not None:
        for key, item in sorted(_attributes(value).items()):  # type: ignore[union-attr]
            _feed(h, key, where, seen)
            _feed(h, item, f"{where}.{key}", seen)
    else:
        raise Uncomparable(f"{where} is a {name}")
    h.update(b">")


def _attributes(value: Any) -> dict[str, Any] | None:
    """An object's own state: its `__dict__` and any `__slots__`; None for opaque objects."""
    found = isinstance(getattr(value, "__dict__", None), dict)
    out: dict[str, Any] = dict(vars(value)) if found else {}
    for cls in type(value).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for slot in (slots,) if isinstance(slots, str) else slots:
            found = True
            if slot not in ("__dict__", "__weakref__") and hasattr(value, slot):
                out[slot] = getattr(value, slot)
    if not found or callable(value):
        return None  # a lock, a generator, a function: nothing a batch is made of
    return out


def to_device(value: Any, device: Any) -> Any:
    """The batch with every tensor in it on `device`; the batch itself when that is the CPU.

    Walks what digest walks: an object with a `.to()` (a BoxList) moves itself, plain
    objects and dataclasses are copied with their attributes moved.
    """
    import copy

    import torch

    if device.type == "cpu":
        return value
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, Mapping):
        return type(value)((k, to_device(v, device)) for k, v in value.items())  # type: ignore[call-arg]
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a namedtuple
        return type(value)(*(to_device(v, device) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    if callable(getattr(value, "to", None)) and not isinstance(value, type):
        return value.to(device)
    state = None if isinstance(value, _VALUE_TYPES) else _attributes(value)
    if state:
        moved = copy.copy(value)
        for key, item in state.items():
            object.__setattr__(moved, key, to_device(item, device))
        return moved
    return value


def check_batches(setup: Setup, target: str) -> None:
    """batch(step, rank) must not depend on global state: run A and run B must see the same."""
    try:
        first, second = setup.batch(0, 0), setup.batch(0, 0)
    except Exception as exc:
        raise FactoryError(f"{target}: batch(0, 0) raised {_one_line(exc)}") from None
    try:
        differ = digest(first) != digest(second)
    except Uncomparable as exc:
        raise FactoryError(
            f"{target}: batch(0, 0) cannot be compared: {exc}; return tensors, numbers, "
            "strings, and lists, tuples, dicts, dataclasses or objects holding them"
        ) from None
    if differ:
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


# Names the probe sets in every rank, or that are its own: not inputs the factory chose.
_RANK_VARIABLES = frozenset(
    {"RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR"}
    | {"MASTER_PORT", "PYTHONUNBUFFERED"}
)
_SECRET = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH", re.IGNORECASE)
REDACTED = "<redacted>"


class RecordingEnviron(MutableMapping):  # type: ignore[type-arg]
    """os.environ that notes which variables are read one by one (get, [], in).

    Bulk reads (copy(), iteration, items()) are not noted: a factory that hands its whole
    environment to a subprocess did not choose a setting. Variables the factory set itself
    are not inputs either. Values of names that look secret are kept as REDACTED.
    """

    def __init__(self, real: MutableMapping[str, str]) -> None:
        self.real = real
        self.read: dict[str, str] = {}
        self._written: set[str] = set()

    def __getitem__(self, key: str) -> str:
        value = self.real[key]
        ours = key in _RANK_VARIABLES or key.startswith("DDP_CODEMOD_")
        if key not in self._written and not ours:
            self.read.setdefault(key, REDACTED if _SECRET.search(key) else value)
        return value

    def __setitem__(self, key: str, value: str) -> None:
        self._written.add(key)
        self.real[key] = value

    def __delitem__(self, key: str) -> None:
        self._written.add(key)
        del self.real[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.real)

    def __len__(self) -> int:
        return len(self.real)

    def keys(self) -> Any:
        return self.real.keys()

    def items(self) -> Any:
        return self.real.items()

    def values(self) -> Any:
        return self.real.values()

    def copy(self) -> dict[str, str]:
        return dict(self.real)


@contextlib.contextmanager
def recording_environ() -> Iterator[RecordingEnviron]:
    """Swap os.environ for a RecordingEnviron (os.getenv looks it up at call time)."""
    real = os.environ
    recorder = RecordingEnviron(real)
    os.environ = recorder  # type: ignore[assignment]  # noqa: B003 (a wrapper, not a reset)
    try:
        yield recorder
    finally:
        os.environ = real  # noqa: B003
