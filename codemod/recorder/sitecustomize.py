"""ddp-codemod trace: run any other sitecustomize, then arm the DDP recorder.

`ddp-codemod trace` puts this folder first on PYTHONPATH, so every Python process of the
traced command (torchrun, its workers, mp.spawn children) runs this file at start-up. It must
stay cheap and must not import torch: it adds an audit hook that notes which repo files are
opened (config evidence) and an import hook that patches DistributedDataParallel.__init__
once torch.nn.parallel.distributed has executed. Python 3.8 syntax; stdlib only.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from importlib.machinery import ModuleSpec, PathFinder
from types import ModuleType
from typing import Any, Sequence

TARGET = "torch.nn.parallel.distributed"
_HERE = os.path.dirname(os.path.realpath(__file__))
_SENTINEL = "_ddp_codemod_sitecustomize"  # in sys.modules once this file has run


def _chain() -> None:
    """Execute the next sitecustomize on sys.path as *the* sitecustomize (a repo's or distro's)."""
    rest = [p for p in sys.path if os.path.realpath(p or os.curdir) != _HERE]
    spec = PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    ours = sys.modules.get("sitecustomize")
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # what site.py does for a failing sitecustomize
        if ours is not None:
            sys.modules["sitecustomize"] = ours
        sys.stderr.write(
            "Error in sitecustomize; set PYTHONVERBOSE for traceback:\n"
            f"{type(exc).__name__}: {exc}\n"
        )


def _load(name: str) -> ModuleType:
    """Import a recorder module from this folder even if the program edited sys.path."""
    module = sys.modules.get(name)
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location(name, os.path.join(_HERE, name + ".py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _patch(module: ModuleType) -> None:
    try:
        _load("_ddp_codemod_source")
        _load("_ddp_codemod_files")
        _load("_ddp_codemod_status")
        _load("_ddp_codemod_recorder").patch(module)
    except Exception as exc:
        sys.stderr.write(f"ddp-codemod: could not install the recorder: {exc!r}\n")


class _PatchingLoader:
    """Runs the real loader, then patches; gives the module its real loader back."""

    def __init__(self, loader: Any, finder: _DDPFinder) -> None:
        self._loader = loader
        self._finder = finder

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        try:
            self._loader.exec_module(module)
        finally:
            module.__loader__ = self._loader
            if getattr(module, "__spec__", None) is not None:
                module.__spec__.loader = self._loader
        self._finder.remove()
        _patch(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _DDPFinder:
    """A meta path finder that only ever answers for torch.nn.parallel.distributed."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: Any = None
    ) -> ModuleSpec | None:
        if fullname != TARGET:
            return None
        for finder in list(sys.meta_path):
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _PatchingLoader(spec.loader, self)
                return spec
        return None

    def remove(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)


def _install() -> None:
    loaded = sys.modules.get(TARGET)
    if loaded is not None:
        _patch(loaded)
    else:
        sys.meta_path.insert(0, _DDPFinder())


if _SENTINEL not in sys.modules:  # a sitecustomize that chains back to us must not loop
    sys.modules[_SENTINEL] = sys.modules[__name__]
    _chain()
    if os.environ.get("DDP_CODEMOD_OUT"):
        try:  # tell trace this process loaded the recorder
            _load("_ddp_codemod_status").STATUS.note("loaded")
        except Exception as exc:
            sys.stderr.write(f"ddp-codemod: could not note the recorder's status: {exc!r}\n")
        try:  # note the files read as they are opened, before the program reads any
            root = os.environ.get("DDP_CODEMOD_ROOT") or os.getcwd()
            _load("_ddp_codemod_files").install(root, os.environ["DDP_CODEMOD_OUT"])
        except Exception as exc:
            sys.stderr.write(f"ddp-codemod: could not watch file reads: {exc!r}\n")
        _install()
