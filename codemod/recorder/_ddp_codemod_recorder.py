"""Record which trainable parameters of each DDP instance got no gradient, and where it was built.

Loaded by sitecustomize.py right after torch.nn.parallel.distributed executes, inside the
traced program: stdlib and torch only, Python 3.8 syntax, and torch APIs feature-detected so
an older torch degrades instead of breaking. Whatever goes wrong in here is reported once on
stderr and training goes on; nothing here touches a tensor, so numerics cannot change.

Only the AccumulateGrad node hook tells reliably whether a parameter got a gradient in a
backward (`.grad`, tensor hooks and DDP's own counters lie; see ddp-facts.md).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import itertools
import json
import os
import socket
import sys
import threading
import time
import types
import weakref
from datetime import datetime, timezone
from typing import Any, Callable

import _ddp_codemod_files as _files
import _ddp_codemod_source as _source

try:
    import _ddp_codemod_status as _status
except ImportError:  # loaded by file path without this sibling (an older probe worker)
    import importlib.util

    _spec = importlib.util.spec_from_file_location(
        "_ddp_codemod_status",
        os.path.join(os.path.dirname(os.path.realpath(__file__)), "_ddp_codemod_status.py"),
    )
    assert _spec is not None and _spec.loader is not None
    _status = importlib.util.module_from_spec(_spec)
    sys.modules["_ddp_codemod_status"] = _status
    _spec.loader.exec_module(_status)

MAX_UNUSED_ITERATIONS = 100  # entries kept in "unused_iterations"; counts stay exact
MAX_FRAMES = 32
WRITE_INTERVAL_S = 1.0
# Until every instance has this many iterations, each one reaches the file at once: a run
# that leaves without atexit (os._exit, a kill, an abort) must still show enough to judge.
# The static side's default min-steps (codemod.project.DEFAULT_MIN_STEPS), unless trace
# passes the project's own in DDP_CODEMOD_MIN_STEPS.
DEFAULT_MIN_STEPS = 3
_HERE = os.path.dirname(os.path.realpath(__file__))
_PATCHED = "_ddp_codemod_original_init"
# Code paths: lines run in the repo's module code during the first iterations.
DEFAULT_RECORD_PATHS = 50
MAX_PATH_FILES = 64
MAX_PATH_LINES = 20000  # per file
MAX_PATH_MODULES = 256  # module classes per file


# Frameworks whose defaults decide the flag (HF Trainer, Lightning < 2.0): their versions
# settle what a static scan can only guess. Read from sys.modules: nothing is imported.
_FRAMEWORKS = (
    "accelerate",
    "colossalai",
    "ignite",
    "lightning",
    "pytorch_lightning",
    "transformers",
    "trl",
)


def _framework_versions() -> dict[str, str]:
    out = {}
    for name in _FRAMEWORKS:
        module = sys.modules.get(name)
        version = getattr(module, "__version__", None) if module is not None else None
        if isinstance(version, str):
            out[name] = version
    return out


def _cwd() -> str:
    """The process's working folder (relative command-line paths mean it); "" if gone."""
    try:
        return os.getcwd()
    except OSError:
        return ""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class _Instance:
    """What one DDP instance saw; holds the DDP object only weakly so it can be freed."""

    def __init__(self, index: int, ddp: Any, names: list[str], info: dict[str, Any]) -> None:
        self.index = index
        self.ref = weakref.ref(ddp)
        self.names = names
        self.info = info
        self.nodes: list[Any] = []  # AccumulateGrad nodes: hooks live only while these do
        self.handles: list[Any] = []  # the parameters' post-accumulate-grad hooks
        # Parameter index -> the hook's argument, set when the parameter gets a gradient: the hook
        # is `partial(got.__setitem__, i)`, C calls with no Python frame (about 1.1 us per
        # parameter per backward against 2.2 for a Python function, timed on one model;
        # most of what is left is PyTorch's dispatch of a hook). open() and close() fold
        # the indices into the sets below and empty it, so it holds no parameter for long.
        self.got: dict[int, Any] = {}
        self.seen: set[int] = set()  # got a gradient since the synchronising forward
        self.window_seen: set[int] = set()  # ... since the first no_sync forward
        self.iteration_open = False
        self.window_open = False
        self.forwards = 0
        self.no_sync_forwards = 0
        self.iterations = 0
        self.unused: dict[str, int] = {}
        self.unused_iterations: list[list[Any]] = []
        self.no_sync_unused: dict[str, int] = {}
        self.first_unused: tuple[int, ...] | None = None
        self.stable = True
        self._static: str | None = None  # JSON of the fields that never change
        # code paths (see _Paths): None until the first recorded forward decides
        self.paths: dict[str, Any] | None = None
        self.path_lines: dict[Any, set[int]] = {}  # code object -> lines run
        self.path_done: set[Any] = set()  # code objects every line of which has run
        self.path_forwards: set[Any] = set()  # code of the watched module classes' forwards
        self.path_iterations = 0

    def release(self) -> None:
        """The DDP is gone: its parameters, which may live on, stop reporting to it (and are
        not held here: what they noted is folded into indices for the open iteration)."""
        self.nodes = []
        self._fold()
        handles, self.handles = self.handles, []
        for handle in handles:
            with contextlib.suppress(Exception):
                handle.remove()

    def hook(self, i: int) -> Callable[[Any, Any], None]:
        """An AccumulateGrad node's post-hook (torch < 2.1): notes parameter `i` when it got
        a real gradient."""
        got = self.got

        def on_accumulate(grad_inputs: Any, grad_outputs: Any) -> None:
            if grad_outputs and grad_outputs[0] is not None:
                got[i] = None

        return on_accumulate

    def param_hook(self, i: int) -> Callable[[Any], None]:
        """A post-accumulate-grad hook, called with the parameter only when it got a
        gradient. deepcopy, pickle and torch.save never reach it (tensors leave their
        hooks behind)."""
        return functools.partial(self.got.__setitem__, i)

    def _fold(self) -> None:
        """Move what the hooks noted into `seen` and the open window's `window_seen`."""
        got = self.got
        if got:
            self.seen.update(got)
            if self.window_open:
                self.window_seen.update(got)
            got.clear()

    def open(self, sync: bool) -> None:
        """A grad-enabled forward: starts a synchronising iteration or a no_sync window."""
        self._fold()
        self.forwards += 1
        if sync:
            self.seen.clear()
            self.iteration_open = True
        else:
            self.no_sync_forwards += 1
            if not self.window_open:
                self.window_seen.clear()
                self.window_open = True

    def _missing(self, seen: set[int]) -> tuple[int, ...]:
        """Indices of the parameters not in `seen`; () at once when all are there."""
        if len(seen) >= len(self.names):
            return ()
        return tuple(i for i in range(len(self.names)) if i not in seen)

    def close(self, at_exit: bool = False) -> bool:
        """Close the open synchronising iteration; True when one was counted.

        At exit an iteration whose backward never ran (no gradient at all) is dropped:
        DDP only complains at the next forward, and there is none.
        """
        if not self.iteration_open:
            return False
        self._fold()
        self.iteration_open = False
        if at_exit and not self.seen:
            self.window_open = False
            return False
        unused = self._missing(self.seen)
        names = [self.names[i] for i in unused]
        for name in names:
            self.unused[name] = self.unused.get(name, 0) + 1
        if names and len(self.unused_iterations) < MAX_UNUSED_ITERATIONS:
            self.unused_iterations.append([self.iterations, names])
        if self.first_unused is None:
            self.first_unused = unused
        elif unused != self.first_unused:
            self.stable = False
        if self.window_open:
            for i in self._missing(self.window_seen):
                name = self.names[i]
                self.no_sync_unused[name] = self.no_sync_unused.get(name, 0) + 1
            self.window_open = False
        self.iterations += 1
        self.seen.clear()
        return True

    def _counts(self) -> dict[str, Any]:
        return {
            "forwards": self.forwards,
            "no_sync_forwards": self.no_sync_forwards,
            "iterations": self.iterations,
            "unused": self.unused,
            "unused_iterations": self.unused_iterations,
            "no_sync_unused": self.no_sync_unused,
            "unused_sets_stable": self.stable,
        }

    def counts(self) -> dict[str, Any]:
        counts = self._counts()
        if self.paths is not None:
            counts["paths"] = _paths_json(self)
        return counts

    def as_json(self) -> dict[str, Any]:
        data = {"index": self.index}
        data.update(self.info)
        data["parameters"] = self.names
        data.update(self.counts())
        return data

    def json_text(self) -> str:
        """as_json() as JSON text; the call site, frames and names are encoded only once."""
        if self._static is None:
            static = {"index": self.index}
            static.update(self.info)
            static["parameters"] = self.names
            self._static = json.dumps(static)[:-1]
        return self._static + ", " + json.dumps(self.counts())[1:]


def _paths_json(inst: _Instance) -> dict[str, Any]:
    """The instance's "paths" evidence: lines run per repo file, and the module classes."""
    paths = inst.paths or {}
    if "skipped" in paths:
        return {"skipped": paths["skipped"], "recorded_iterations": 0}
    lines: dict[str, set[int]] = {}
    names = paths.get("rel", {})
    for code, seen in list(inst.path_lines.items()):
        rel = names.get(code.co_filename)
        if rel is not None:
            lines.setdefault(rel, set()).update(seen)
    files = {}
    for rel, digest in sorted(paths.get("sha256", {}).items()):
        ran = sorted(lines.get(rel, ()))
        files[rel] = {"sha256": digest, "lines": ran[:MAX_PATH_LINES]}
        if len(ran) > MAX_PATH_LINES:
            files[rel]["truncated"] = True
    modules = {}
    for rel, table in sorted(paths.get("modules", {}).items()):
        modules[rel] = [
            {"class": qualname, "line": line, "params": sorted(params)}
            for (qualname, line), params in sorted(table.items())
        ]
    out: dict[str, Any] = {
        "files": files,
        "modules": modules,
        "recorded_iterations": inst.path_iterations,
    }
    if paths.get("compiled"):
        out["compiled"] = "compiled: paths not recorded"
    if paths.get("incomplete"):
        out["incomplete"] = paths["incomplete"]
    return out


class _Paths:
    """Which lines of the repo's module code ran, during the first `limit` iterations.

    The watched files are those holding the forward of a module class inside a recorded
    model, so helpers defined there count too. Two ways to see lines, one evidence shape
    (`inst.path_lines`: code object -> lines run, for the instance whose forward ran last):

    - Python >= 3.12: `sys.monitoring` under a tool id nobody holds, LINE events enabled only
      on the code objects of the watched files, each location disabled after its first hit;
      the tool is freed when recording stops. It coexists with other tracers and tools.
    - Otherwise (or with every tool id taken): sys.settrace with a global function that
      returns a local tracer only for code objects of the watched files; never installed
      over another tracer (coverage, a debugger), which is said in the evidence. A global
      tracer is called for every Python call of its thread, so it is on only inside the
      DDP forward (`_window`): installed by the forward pre-hook of an instance still
      under its limit, removed when the DDP's own `forward` frame returns. Backward,
      optimizer and data loading run untraced, and an instance past its limit (or one
      that stopped stepping) costs nothing.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.state = "idle"  # "idle", "on", "done"
        self.files: dict[str, str] = {}  # co_filename -> repo path
        self.hot: set[str] = set()  # those, and the file of the DDP forward (`window`)
        self.current: _Instance | None = None
        self.monitor: _Monitor | None = None  # set while sys.monitoring records
        self.window: Any = None  # code of the DDP forward whose return ends the window
        self.window_end = self._window_end  # one bound method, returned for that frame
        self.depth = 0  # DDP forward frames open inside the window
        self.starts: dict[Any, frozenset[int]] = {}  # code object -> its lines, less the first
        self.tracer = self._global()  # one function, so `sys.gettrace() is` can tell

    def _global(self) -> Callable[[Any, str, Any], Any]:
        """The settrace function, called for every Python call inside the window. The common
        answer (a file neither watched nor the DDP forward's) costs one lookup in a set of
        strings whose hashes are cached, with no attribute lookups: a code object's hash is
        computed anew each time, and `self.x` costs as much as the rest."""
        hot, files, paths = self.hot, self.files, self

        def tracer(frame: Any, event: str, arg: Any) -> Any:
            try:
                code = frame.f_code
                if code.co_filename not in hot:
                    return None
                if code is paths.window:
                    paths.depth += 1  # a DDP forward inside a DDP forward (a wrapped teacher)
                    return paths.window_end
                inst = paths.current
                if inst is None or code in inst.path_done or code.co_filename not in files:
                    return None
                return paths._local(inst, code)
            except Exception:
                return None

        return tracer

    def _local(self, inst: _Instance, code: Any) -> Callable[[Any, str, Any], Any]:
        """The tracer of one frame of a watched code object: notes its lines for `inst`.
        When a frame returns with every line of its code run, later calls of that code are
        not traced: nothing new could be seen there (a straight-line forward is done after
        one call; one with an arm not taken yet stays traced until the arm runs)."""
        lines = inst.path_lines.get(code)
        if lines is None:
            lines = inst.path_lines[code] = set()
        add, done = lines.add, inst.path_done

        def local(frame: Any, event: str, arg: Any) -> Any:
            if event == "line":
                add(frame.f_lineno)
            elif event == "return" and self._complete(code, lines):
                done.add(code)
            return local

        return local

    def _complete(self, code: Any, lines: set[int]) -> bool:
        """Every line of `code` has run. Its first line is left out: from Python 3.11 it
        holds only the frame's RESUME, for which no line event comes (and no branch arm
        starts on a `def` line)."""
        starts = self.starts.get(code)
        if starts is None:
            import dis

            found = {line for _, line in dis.findlinestarts(code) if line is not None}
            found.discard(code.co_firstlineno)
            starts = self.starts[code] = frozenset(found)
        return starts <= lines

    def _window_end(self, frame: Any, event: str, arg: Any) -> Any:
        """The local tracer of the DDP forward's frame: its return closes the window."""
        if event == "return":
            self.depth -= 1
            if self.depth <= 0:
                self.depth = 0
                try:
                    if sys.gettrace() is self.tracer:
                        sys.settrace(None)
                except Exception:
                    pass
            return None
        return self.window_end

    def _open_window(self, inst: _Instance, ddp: Any) -> None:
        """settrace mode: trace this forward, if `inst` is still under its limit."""
        current = sys.gettrace()
        if inst.iterations >= self.limit or self._nothing_to_see(inst):
            if current is self.tracer:
                sys.settrace(None)
            return
        forward = getattr(type(ddp), "forward", None)
        while hasattr(forward, "__wrapped__"):
            forward = forward.__wrapped__
        self.window = getattr(forward, "__code__", None)
        if self.window is not None:
            self.hot.add(self.window.co_filename)
        if current is None:
            self.depth = 0
            sys.settrace(self.tracer)
        elif current is not self.tracer:
            inst.paths["incomplete"] = "another tracer replaced the recorder's"

    @staticmethod
    def _nothing_to_see(inst: _Instance) -> bool:
        """Every watched forward has run, and every line of all the code `inst` ran: a
        model without repo code, or one whose forwards have no arm left untaken, is traced
        no more. Whatever a later forward could still reach first (a callee that changes)
        would go unseen, which can only add unexercised arms: never a wrong `safe`."""
        done = inst.path_done
        return len(done) == len(inst.path_lines) and inst.path_forwards <= done

    def start(self, recorder: Recorder, inst: _Instance, ddp: Any) -> None:
        """A grad-enabled forward of `inst`: begin (or go on) recording its paths."""
        if self.state == "done":
            if inst.paths is None:
                inst.paths = {"skipped": "path recording had ended before its first forward"}
            return
        described = inst.paths is None
        if described:
            inst.paths = self._describe(recorder, inst, ddp)
        if "skipped" in inst.paths:
            return
        monitor = self.monitor
        if self.state == "idle":
            monitor = _Monitor.claim(self._line)
            if monitor is None and sys.gettrace() is not None:
                why = "another tracer is active"
                if getattr(sys, "monitoring", None) is not None:
                    why = "no free monitoring tool id"
                inst.paths = {"skipped": why}
                self.state = "done"
                return
            self.monitor = monitor
            self.state = "on"
        if monitor is None:
            self._open_window(inst, ddp)
        else:
            if described:
                monitor.watch(ddp, self.files)
            if self.current is not None and self.current is not inst:
                monitor.restart()  # lines this instance runs too must reach it as well
        self.current = inst

    def _line(self, code: Any, line: int) -> Any:
        """sys.monitoring's LINE callback: note the line for the current instance, once."""
        try:
            inst = self.current
            if inst is not None:
                lines = inst.path_lines.get(code)
                if lines is None:
                    lines = inst.path_lines[code] = set()
                lines.add(line)
        except Exception:
            pass
        return _Monitor.DISABLE

    def closed(self, recorder: Recorder) -> None:
        """An iteration closed: stop once every live instance did `limit` iterations."""
        if self.state != "on":
            return
        for inst in recorder.instances:
            if inst.paths is not None and "skipped" not in inst.paths:
                inst.path_iterations = min(inst.iterations, self.limit)
        live = [i for i in recorder.instances if i.forwards and i.ref() is not None]
        if live and all(i.iterations >= self.limit for i in live):
            self.stop()

    def stop(self) -> None:
        if self.monitor is not None:
            self.monitor.free()
            self.monitor = None
        elif self.state == "on" and sys.gettrace() is self.tracer:
            sys.settrace(None)
        self.state = "done"
        self.current = None

    def _describe(self, recorder: Recorder, inst: _Instance, ddp: Any) -> dict[str, Any]:
        """The module classes of the model whose forward is repo code, and their files."""
        sources = recorder._sources
        if sources is None:
            return {"skipped": "no repo root"}
        modules: dict[str, dict[tuple[str, int], set[str]]] = {}
        digests: dict[str, str] = {}
        compiled = False
        for module in ddp.module.modules():
            cls = type(module)
            if cls.__name__ == "OptimizedModule" or hasattr(module, "_orig_mod"):
                compiled = True
            owner = next((k for k in cls.__mro__ if "forward" in k.__dict__), None)
            forward = owner.__dict__["forward"] if owner is not None else None
            while hasattr(forward, "__wrapped__"):
                forward = forward.__wrapped__
            code = getattr(forward, "__code__", None)
            if code is None or owner is None:
                continue
            rel = sources.repo_path(code.co_filename)
            if rel is None:
                continue
            if rel not in digests:
                if len(digests) >= MAX_PATH_FILES:
                    continue
                digest = _files.file_sha256(sources.real(code.co_filename))
                if digest is None:
                    continue
                digests[rel] = digest
            self.files[code.co_filename] = rel
            self.hot.add(code.co_filename)
            inst.path_forwards.add(code)
            table = modules.setdefault(rel, {})
            key = (owner.__qualname__, code.co_firstlineno)
            if key not in table and len(table) >= MAX_PATH_MODULES:
                continue
            params = table.setdefault(key, set())
            for name, child in module.named_children():
                if any(p.requires_grad for p in child.parameters()):
                    params.add(name)
            for name, param in module.named_parameters(recurse=False):
                if param.requires_grad:
                    params.add(name)
        rel_of = {name: rel for name, rel in self.files.items() if rel in digests}
        out: dict[str, Any] = {"modules": modules, "sha256": digests, "rel": rel_of}
        if compiled:
            out = {"skipped": "compiled: paths not recorded"}
        return out


class _Monitor:
    """The recorder's hold on one `sys.monitoring` tool id (Python >= 3.12), LINE events only.

    Code objects are found by walking the model's module classes (their MRO) and the
    globals of the modules that define them, following functions, methods, properties,
    wrappers (`__wrapped__`, closures) and the code objects nested in `co_consts`, once per
    class at the instance's first recorded forward. That costs nothing while training runs,
    unlike a global PY_START, which would fire for every function of the process (torch's
    Python layers, the data loader) until disabled per code object, and again after each
    `restart_events`. A code object the walk misses (exec'd code, a function no class or
    global reaches) only looks unexecuted: its branches read as never taken, the cautious
    side (unknown, never a false safe). Each location reports once, then is disabled; when
    another instance's forward begins, `restart_events` re-arms them (it re-arms other
    tools' disabled events too: they are called again, which they must allow), so a line
    both instances run reaches each, as under settrace.
    """

    NAME = "ddp-codemod"
    # ids 3 and 4 have no designated tool; then coverage's and the profiler's, when free.
    # Never 0 (debuggers) or 5 (optimizers): holding those could block one that starts later.
    IDS = (3, 4, 1, 2)
    DISABLE: Any = None
    MAX_OBJECTS = 50000  # objects one walk looks at

    def __init__(self, mon: Any, tool: int) -> None:
        self.mon = mon
        self.tool = tool
        self.codes: set[Any] = set()  # code objects with LINE events on
        self.seen: set[int] = set()  # ids of what the walks looked at (kept alive below)
        self.kept: list[Any] = []

    @classmethod
    def claim(cls, callback: Callable[[Any, int], Any]) -> _Monitor | None:
        """A free tool id with `callback` on its LINE events; None: no sys.monitoring, or
        every id is taken (another tool is never displaced)."""
        mon = getattr(sys, "monitoring", None)
        if mon is None:
            return None
        for tool in cls.IDS:
            if mon.get_tool(tool) is not None:
                continue
            try:
                mon.use_tool_id(tool, cls.NAME)
            except ValueError:  # taken between the look and the claim
                continue
            cls.DISABLE = mon.DISABLE
            mon.register_callback(tool, mon.events.LINE, callback)
            return cls(mon, tool)
        return None

    def watch(self, ddp: Any, files: dict[str, str]) -> None:
        """Enable LINE events on every code object of `files` the model's classes reach."""
        todo: list[Any] = []
        for module in ddp.module.modules():
            for klass in type(module).__mro__:
                owner = _defined_in(klass, files)
                if owner is None:
                    continue
                todo.append(klass)
                if self._keep(owner):
                    todo.extend(list(vars(owner).values()))
        line = self.mon.events.LINE
        for code in self._codes(todo, files):
            self.mon.set_local_events(self.tool, code, line)
            self.codes.add(code)

    def _keep(self, obj: Any) -> bool:
        """True the first time `obj` is seen (and it stays alive, so its id stays its)."""
        if id(obj) in self.seen or len(self.seen) >= self.MAX_OBJECTS:
            return False
        self.seen.add(id(obj))
        self.kept.append(obj)
        return True

    def _codes(self, todo: list[Any], files: dict[str, str]) -> list[Any]:
        """The new code objects of `files` reachable from `todo` (functions, classes of
        those files, properties, wrappers and closures, nested code)."""
        found = []
        while todo:
            obj = todo.pop()
            if isinstance(obj, type):
                if _defined_in(obj, files) is not None and self._keep(obj):
                    todo.extend(list(vars(obj).values()))
            elif isinstance(obj, types.CodeType):
                if self._keep(obj):
                    if obj.co_filename in files and obj not in self.codes:
                        found.append(obj)
                    todo.extend(c for c in obj.co_consts if isinstance(c, types.CodeType))
            elif isinstance(obj, property):
                if self._keep(obj):
                    todo.extend(f for f in (obj.fget, obj.fset, obj.fdel) if f is not None)
            elif (callable(obj) or isinstance(obj, (staticmethod, classmethod))) and self._keep(
                obj
            ):
                for name in ("__code__", "__func__", "__wrapped__", "func", "__closure__"):
                    try:  # a user object's __getattr__ may raise anything
                        inner = getattr(obj, name, None)
                    except Exception:
                        continue
                    if name != "__closure__":
                        todo.append(inner)
                        continue
                    for cell in inner if isinstance(inner, tuple) else ():
                        with contextlib.suppress(ValueError):  # an empty cell
                            todo.append(cell.cell_contents)
        return found

    def restart(self) -> None:
        self.mon.restart_events()

    def free(self) -> None:
        """Turn every event of the tool off and give its id back."""
        mon, tool = self.mon, self.tool
        with contextlib.suppress(Exception):
            for code in self.codes:
                mon.set_local_events(tool, code, 0)
        with contextlib.suppress(Exception):
            mon.register_callback(tool, mon.events.LINE, None)
        with contextlib.suppress(Exception):
            mon.free_tool_id(tool)
        self.codes = set()
        self.kept = []
        self.seen = set()


def _defined_in(klass: type, files: dict[str, str]) -> Any:
    """The module that defines `klass` when its file is one of `files`, else None."""
    owner = sys.modules.get(getattr(klass, "__module__", None) or "")
    return owner if getattr(owner, "__file__", None) in files else None


class _PreHook:
    """The forward pre-hook on one recorded DDP instance.

    It sits in the module's `_forward_pre_hooks`, which deepcopy and pickle reach; the patched
    `__getstate__` leaves it out of the copied state, and code that copies the hook dict
    itself gets this same object back, which ignores every module but the one it records.
    """

    __slots__ = ("inst", "recorder")

    def __init__(self, recorder: Recorder, inst: _Instance) -> None:
        self.recorder = recorder
        self.inst = inst

    def __call__(self, module: Any, args: Any) -> None:
        self.recorder.on_forward(self.inst, module, args)

    def __copy__(self) -> _PreHook:
        return self

    def __deepcopy__(self, memo: Any) -> _PreHook:
        return self


_HOOK_DICTS = (
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_forward_pre_hooks_always_called",
)


def _without_recorder_hooks(state: Any) -> Any:
    """A module's pickled state without the recorder's hooks (the live module keeps them)."""
    if not isinstance(state, dict):
        return state
    hooks = state.get("_forward_pre_hooks")
    if not hooks:
        return state
    ours = [key for key, hook in hooks.items() if isinstance(hook, _PreHook)]
    if not ours:
        return state
    state = dict(state)
    for name in _HOOK_DICTS:
        table = state.get(name)
        if table is None or not hasattr(table, "copy"):
            continue
        table = table.copy()  # the live module's dict stays as it is
        for key in ours:
            table.pop(key, None)
        state[name] = table
    return state


class _Sources:
    """Repo-relative paths and source text of the files frames point into, cached."""

    def __init__(self, root: str, torch_dir: str | None) -> None:
        self.paths = _files.RepoPaths(root)
        self.root = self.paths.root
        self.torch_dir = torch_dir
        self._real: dict[str, str] = {}
        self._rel: dict[str, str | None] = {}
        self._text: dict[str, tuple[str, list[str]] | None] = {}

    def real(self, filename: str) -> str:
        path = self._real.get(filename)
        if path is None:
            path = self._real[filename] = os.path.realpath(filename)
        return path

    def is_tooling(self, filename: str) -> bool:
        """Frames of torch or of the recorder itself, never the call site."""
        path = self.real(filename)
        return _files.under(path, _HERE) or bool(
            self.torch_dir and _files.under(path, self.torch_dir)
        )

    def repo_path(self, filename: str) -> str | None:
        """POSIX path relative to the repo root, or None for anything that is not repo code."""
        if filename in self._rel:
            return self._rel[filename]
        rel = None if filename.startswith("<") else self.paths.relative(self.real(filename))
        self._rel[filename] = rel
        return rel

    def text(self, rel: str) -> tuple[str, list[str]] | None:
        if rel not in self._text:
            try:
                text = _source.read_source(os.path.join(self.root, rel))
                self._text[rel] = (text, _source.source_lines(text))
            except (OSError, SyntaxError, UnicodeDecodeError, LookupError):
                self._text[rel] = None
        return self._text[rel]


def _frame_lines(frame: Any) -> tuple[int, int] | None:
    """Exact (line, end_line) of the instruction running in `frame`, on Python 3.11+."""
    positions = getattr(frame.f_code, "co_positions", None)
    if positions is None or frame.f_lasti < 0:
        return None
    pos = next(itertools.islice(positions(), frame.f_lasti // 2, None), None)
    if pos is None or pos[0] is None or pos[1] is None:
        return None
    return pos[0], pos[1]


class Recorder:
    """One per process: the DDP instances built here and the evidence file they go to."""

    def __init__(self, environ: dict[str, str]) -> None:
        self.errors: list[str] = []
        self._reported: set[str] = set()
        self.instances: list[_Instance] = []
        self.pid = os.getpid()
        self.started = _now()
        self.out = os.path.abspath(environ.get("DDP_CODEMOD_OUT", "."))
        self.root = environ.get("DDP_CODEMOD_ROOT") or os.getcwd()
        self.run_id = environ.get("DDP_CODEMOD_RUN_ID")
        self.repo_id = environ.get("DDP_CODEMOD_REPO_ID") or None
        self.command = self._command(environ.get("DDP_CODEMOD_COMMAND"))
        self.steps = self._steps(environ.get("DDP_CODEMOD_STEPS"))
        self.min_steps = self._steps(environ.get("DDP_CODEMOD_MIN_STEPS")) or DEFAULT_MIN_STEPS
        self.path_limit = self._path_limit(environ.get("DDP_CODEMOD_RECORD_PATHS"))
        self._paths = _Paths(self.path_limit) if self.path_limit else None
        self.host = socket.gethostname()
        self.path = os.path.join(self.out, _source.evidence_name(self.host, self.pid))
        self.finished = False
        self.rank: tuple[int, int] | None = None
        self.parent_pid: int | None = None
        self._last_write: float | None = None
        self._eager_level = 0  # every instance with forwards had this many iterations written
        self._dirty = False  # something the file does not show yet
        self._exiting_hooked = False
        self._torch: Any = None
        self._sources: _Sources | None = None
        self._python: str | None = None
        self._files_version = -1
        self._files_json = "[]"
        self._new_writer()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        """A forked child (a multiprocessing worker) gets a record and a file of its own.

        It inherits the parent's instances, but those belong to the parent's process group:
        what the child builds after the fork is its own. The files the parent read stay
        noted (the child was shaped by them). Cheap: no I/O, DataLoader workers fork often.
        """
        self.parent_pid, self.pid = self.pid, os.getpid()
        if self._paths is not None:  # a DataLoader worker must not keep the tracer
            self._stop_paths()
            self._paths = _Paths(self.path_limit)
        self.path = os.path.join(self.out, _source.evidence_name(self.host, self.pid))
        self.instances = []
        self.errors = []
        self._reported = set()
        self.started = _now()
        self.finished = False
        self.rank = None
        self._last_write = None
        self._eager_level = 0
        self._dirty = False
        self._new_writer()  # the parent's writer thread does not exist here; its lock may be held

    def _new_writer(self) -> None:
        self._write_lock = threading.RLock()  # one write to the file at a time (re-entrant:
        # a signal handler that calls os._exit in the middle of a write writes again)
        self._wake = threading.Condition(threading.Lock())
        self._pending: tuple[int, tuple[str, str]] | None = None  # newest, for the writer
        self._made = 0  # texts made, numbered in the order of the state they show
        self._written = 0  # the number of the last text written
        self._writer: threading.Thread | None = None

    # -- failures --------------------------------------------------------------------------
    def report(self, where: str, exc: BaseException) -> None:
        """Say once per kind of failure that the recorder failed; training is not touched."""
        key = f"{where}: {type(exc).__name__}"
        if key in self._reported:
            return
        self._reported.add(key)
        message = f"{where}: {exc!r}"
        self.errors.append(message)
        try:
            sys.stderr.write(f"ddp-codemod: recorder error in {message}; training goes on\n")
            sys.stderr.flush()
        except Exception:
            pass

    def _command(self, raw: str | None) -> list[str] | None:
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except ValueError as exc:
            self.report("DDP_CODEMOD_COMMAND", exc)
            return None
        return [str(v) for v in value] if isinstance(value, list) else None

    def _steps(self, raw: str | None) -> int | None:
        if not raw:
            return None
        try:
            steps = int(raw)
        except ValueError as exc:
            self.report("DDP_CODEMOD_STEPS", exc)
            return None
        return steps if steps > 0 else None

    def _path_limit(self, raw: str | None) -> int:
        """Iterations whose code paths are recorded: all of them under --steps."""
        limit = DEFAULT_RECORD_PATHS
        if raw:
            try:
                limit = max(0, int(raw))
            except ValueError as exc:
                self.report("DDP_CODEMOD_RECORD_PATHS", exc)
        if limit and self.steps is not None:
            limit = max(limit, self.steps)
        return limit

    # -- patching ----------------------------------------------------------------------------
    def patch(self, module: Any) -> None:
        """Wrap DistributedDataParallel.__init__ in a freshly executed distributed module.

        Runs while `import torch` is still going on: touch nothing else of torch here.
        """
        cls = module.DistributedDataParallel
        if _PATCHED in cls.__dict__:
            return
        original = cls.__init__
        recorder = self

        @functools.wraps(original)
        def __init__(ddp: Any, *args: Any, **kwargs: Any) -> None:
            original(ddp, *args, **kwargs)
            try:
                recorder.on_init(ddp, sys._getframe(1), kwargs)
            except Exception as exc:
                recorder.report("DistributedDataParallel.__init__", exc)

        setattr(cls, _PATCHED, original)
        cls.__init__ = __init__
        self._patch_getstate(cls)
        self._patch_destroy(sys.modules.get("torch.distributed"))

    def _patch_destroy(self, dist: Any) -> None:
        """Write when the process group goes: what follows may be an abort in finalisation."""
        original = getattr(dist, "destroy_process_group", None)
        if original is None or getattr(original, _PATCHED, None) is not None:
            return
        recorder = self

        @functools.wraps(original)
        def destroy_process_group(*args: Any, **kwargs: Any) -> Any:
            recorder.flush()
            return original(*args, **kwargs)

        setattr(destroy_process_group, _PATCHED, original)
        dist.destroy_process_group = destroy_process_group

    def _patch_exit(self) -> None:
        """os._exit skips atexit: multiprocessing workers and many scripts leave through it."""
        if self._exiting_hooked:
            return
        self._exiting_hooked = True
        original = os._exit
        recorder = self

        @functools.wraps(original)
        def _exit(*args: Any, **kwargs: Any) -> Any:
            with contextlib.suppress(BaseException):
                recorder.at_exit()
            return original(*args, **kwargs)

        setattr(_exit, _PATCHED, original)
        os._exit = _exit

    def _patch_getstate(self, cls: Any) -> None:
        """deepcopy, pickle and torch.save of a recorded DDP must not reach the recorder."""
        original = getattr(cls, "__getstate__", None)
        recorder = self

        def __getstate__(ddp: Any) -> Any:
            if original is None or original is object.__dict__.get("__getstate__"):
                state = dict(ddp.__dict__)  # what pickle takes without a __getstate__
            else:
                state = original(ddp)
            try:
                return _without_recorder_hooks(state)
            except Exception as exc:
                recorder.report("DistributedDataParallel.__getstate__", exc)
                return state

        if original is not None:
            functools.update_wrapper(__getstate__, original)
        cls.__getstate__ = __getstate__

    # -- per instance ----------------------------------------------------------------------
    def on_init(
        self, ddp: Any, caller: Any, kwargs: dict[str, Any], by_forward: bool = True
    ) -> _Instance | None:
        """Start recording `ddp`; returns its record (None when it is already recorded).

        With by_forward=False no forward pre-hook is installed and the caller opens and
        closes iterations itself: `ddp-codemod probe` drives one iteration per training
        step, which stays right when a step runs several forwards before one backward.
        """
        if any(inst.ref() is ddp for inst in self.instances):
            return None  # DDP.__init__ reached twice for one object (odd multiple inheritance)
        import torch

        self._torch = torch
        self._patch_destroy(getattr(torch, "distributed", None))  # if patch() was too early
        if self._sources is None:
            torch_dir = os.path.dirname(os.path.realpath(torch.__file__))
            self._sources = _Sources(self.root, torch_dir)
        if self.rank is None:
            self.rank = self._rank(None)
        params, names = self._trainable(ddp)
        rank, world_size = self._rank(getattr(ddp, "process_group", None))
        info: dict[str, Any] = {
            "class": f"{type(ddp).__module__}.{type(ddp).__qualname__}",
            "find_unused_parameters": bool(getattr(ddp, "find_unused_parameters", False)),
            "static_graph": bool(getattr(ddp, "static_graph", False)),
            "rank": rank,
            "world_size": world_size,
            "call_site": None,
            "frames": [],
        }
        inst = _Instance(len(self.instances), ddp, names, info)
        try:
            info["call_site"], info["frames"] = self._where(ddp, caller, kwargs)
        except Exception as exc:
            self.report("finding the DDP call site", exc)
        failed: list[str] = []
        for i, param in enumerate(params):
            try:
                self._hook(inst, i, param)
            except Exception as exc:  # that parameter then looks unused: the safe side
                failed.append(names[i])
                problem = exc
        if failed:
            where = f"hooking {len(failed)} of {len(params)} parameters (first: {failed[0]})"
            self.report(where, problem)
        weakref.finalize(ddp, inst.release)
        if by_forward:
            ddp.register_forward_pre_hook(_PreHook(self, inst))
        if not self._exiting_hooked:
            atexit.register(self.at_exit)  # once: a forked child inherits it
            self._patch_exit()
        self.instances.append(inst)
        _status.STATUS.note("ddp")
        if len(self.instances) == 1:
            self.write()  # a run killed before its first forward still shows its DDP
        else:
            self._dirty = True  # 50 instances built in a row share the next write
        return inst

    def _trainable(self, ddp: Any) -> tuple[list[Any], list[str]]:
        """DDP's own parameter set: trainable, not ignored, each tensor once."""
        ignored = set(getattr(ddp, "parameters_to_ignore", None) or ())
        params: list[Any] = []
        names: list[str] = []
        ids: set[int] = set()
        for name, param in ddp.module.named_parameters():
            if param.requires_grad and name not in ignored and id(param) not in ids:
                ids.add(id(param))
                params.append(param)
                names.append(name)
        return params, names

    def _hook(self, inst: _Instance, i: int, param: Any) -> None:
        """Note each gradient `param` gets. A post-accumulate-grad hook where torch has them
        (2.1+): PyTorch calls it with one tensor, where a node hook gets two tuples built
        for it, several times cheaper per parameter per backward. Neither is copied by
        deepcopy, pickle or torch.save."""
        register = getattr(param, "register_post_accumulate_grad_hook", None)
        if register is not None:
            inst.handles.append(register(inst.param_hook(i)))
            return
        node = self._grad_node(param)
        node.register_hook(inst.hook(i))
        inst.nodes.append(node)

    def _grad_node(self, param: Any) -> Any:
        torch = self._torch
        get_edge = getattr(getattr(torch.autograd, "graph", None), "get_gradient_edge", None)
        if get_edge is not None:
            return get_edge(param).node
        with torch.enable_grad():
            return param.view_as(param).grad_fn.next_functions[0][0]

    def _rank(self, group: Any) -> tuple[int, int]:
        try:
            dist = self._torch.distributed
            if dist.is_available() and dist.is_initialized():
                if group is None:
                    return dist.get_rank(), dist.get_world_size()
                return dist.get_rank(group), dist.get_world_size(group)
        except Exception as exc:
            self.report("reading the rank", exc)
        try:
            return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
        except ValueError:
            return 0, 1

    # -- call site -------------------------------------------------------------------------
    def _where(
        self, ddp: Any, caller: Any, kwargs: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The constructor call (None when it is not repo code) and the repo frames."""
        sources = self._sources
        assert sources is not None
        inits = self._mro_inits(type(ddp))
        frame = caller
        while frame is not None and (
            sources.is_tooling(frame.f_code.co_filename) or self._is_init(frame, ddp, inits)
        ):
            frame = frame.f_back
        call_site = None
        frames: list[dict[str, Any]] = []
        first = True
        while frame is not None and len(frames) < MAX_FRAMES:
            rel = sources.repo_path(frame.f_code.co_filename)
            loaded = sources.text(rel) if rel is not None else None
            if rel is not None and loaded is not None:
                text = loaded[0]
                span = _frame_lines(frame)
                if span is None and first:
                    names = [c.__name__ for c in type(ddp).__mro__]
                    names += [k for k, v in frame.f_globals.items() if v is type(ddp)]
                    span = _source.call_span(text, frame.f_lineno, names, list(kwargs))
                line, end_line = span or (frame.f_lineno, frame.f_lineno)
                if first:
                    call_site = _source.describe_call(rel, text, line, end_line)
                frames.append(_source.describe_frame(rel, text, line))
            first = False
            frame = frame.f_back
        return call_site, frames

    @staticmethod
    def _mro_inits(cls: type) -> set[Any]:
        codes: set[Any] = set()
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            while init is not None:
                code = getattr(init, "__code__", None)
                if code is not None:
                    codes.add(code)
                init = getattr(init, "__wrapped__", None)
        return codes

    @staticmethod
    def _is_init(frame: Any, ddp: Any, inits: set[Any]) -> bool:
        """A subclass __init__ on its way to super().__init__: not where DDP was built."""
        code = frame.f_code
        if code in inits:
            return True
        if code.co_name != "__init__" or not code.co_argcount:
            return False
        return frame.f_locals.get(code.co_varnames[0]) is ddp

    # -- iterations ------------------------------------------------------------------------
    def on_forward(self, inst: _Instance, module: Any, args: Any) -> None:
        """Forward pre-hook: close the last iteration, maybe stop, open the next one."""
        try:
            if module is not inst.ref() or not self._torch.is_grad_enabled():
                return  # a copy sharing our hook, or a teacher/EMA/eval forward
            if inst.close():
                self._paths_closed()
                self._closed(inst)
            elif self._dirty:
                self._maybe_write()
            if self.steps is not None and self._all_done(self.steps):
                self.stop()
            inst.open(bool(getattr(module, "require_backward_grad_sync", True)))
            if self._paths is not None:
                self._paths.start(self, inst, module)
        except Exception as exc:
            self.report("the DDP forward pre-hook", exc)
            self._stop_paths()

    def _paths_closed(self) -> None:
        if self._paths is not None:
            try:
                self._paths.closed(self)
            except Exception as exc:
                self.report("recording code paths", exc)
                self._stop_paths()

    def _stop_paths(self) -> None:
        with contextlib.suppress(Exception):
            if self._paths is not None:
                self._paths.stop()

    def open_step(self, inst: _Instance, ddp: Any) -> None:
        """A probe step begins (on_init with by_forward=False): one synchronising iteration,
        its code paths recorded like a forward's."""
        inst.open(True)
        if self._paths is not None:
            try:
                self._paths.start(self, inst, ddp)
            except Exception as exc:
                self.report("recording code paths", exc)
                self._stop_paths()

    def close_step(self, inst: _Instance) -> None:
        """The probe step's backward ran: count it; path recording ends after its limit."""
        if inst.close():
            self._paths_closed()

    def _all_done(self, steps: int) -> bool:
        live = [i for i in self.instances if i.forwards and i.ref() is not None]
        return bool(live) and all(i.iterations >= steps for i in live)

    def stop(self) -> None:
        """--steps reached: write, wait for the other ranks, and leave before DDP's collectives."""
        self.finished = True
        self._stop_paths()
        self.write()
        rank = self.rank[0] if self.rank else 0
        try:
            sys.stderr.write(
                f"ddp-codemod: rank {rank}: stopping after {self.steps} synchronising "
                "iterations of every DDP instance (--steps)\n"
            )
            dist = self._torch.distributed
            if dist.is_available() and dist.is_initialized():
                dist.barrier()
        except Exception as exc:
            self.report("the barrier before stopping", exc)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(0)

    def at_exit(self) -> None:
        """The process ends (atexit, os._exit): count the last iterations, then write."""
        if os.getpid() != self.pid or (self.finished and not self._dirty):
            return  # a forked child's copy, or written already (--steps, atexit, os._exit)
        try:
            for inst in self.instances:
                inst.close(at_exit=True)
            self._paths_closed()
            self._stop_paths()
            self.finished = True
        except Exception as exc:
            self.report("closing iterations at exit", exc)
        self.write()

    def flush(self) -> None:
        """The process group goes away: count iterations whose backward ran, and write."""
        try:
            if os.getpid() != self.pid or not self.instances:
                return
            for inst in self.instances:
                inst.close(at_exit=True)
            self.write()
        except Exception as exc:
            self.report("writing at destroy_process_group", exc)

    # -- evidence --------------------------------------------------------------------------
    def _closed(self, inst: _Instance) -> None:
        """An iteration closed: write at once until every instance has min-steps of them,
        but once per round of instances (50 models stepping together write once a round)."""
        self._dirty = True
        if inst.iterations <= self.min_steps and inst.iterations > self._eager_level:
            live = [i.iterations for i in self.instances if i.forwards and i.ref() is not None]
            level = min(live) if live else 0
            if level > self._eager_level:
                self._eager_level = level
                self.write()
                return
        self._maybe_write()

    def _maybe_write(self) -> None:
        last = self._last_write
        if last is None or time.monotonic() - last >= WRITE_INTERVAL_S:
            self.write(background=True)

    def _head(self) -> dict[str, Any]:
        rank, world_size = self.rank or (0, 1)
        if self._python is None:
            import platform

            self._python = platform.python_version()
        head = {
            "format": _source.FORMAT,
            "version": _source.VERSION,
            "kind": "trace",
            "run_id": self.run_id,
            "repo": {"root": os.path.abspath(self.root), "git_root_commit": self.repo_id},
            "command": self.command,
            "argv": list(getattr(sys, "argv", [])),
            "cwd": _cwd(),
            "frameworks": _framework_versions(),
            "pid": self.pid,
            "host": self.host,
            "python": self._python,
            "torch": str(getattr(self._torch, "__version__", "")) or None,
            "rank": rank,
            "world_size": world_size,
            "started": self.started,
            "updated": _now(),
            "finished": self.finished,
            "steps_limit": self.steps,
        }
        if self.parent_pid is not None:
            head["parent_pid"] = self.parent_pid
        return head

    def _files_text(self) -> str:
        """files_read, files_read_unhashed and unrecorded_sources as JSON members; the list
        is encoded again only when a snapshot found something new."""
        files = sys.modules.get("_ddp_codemod_files")
        if files is None or getattr(files, "READ", None) is None:
            return '"files_read": [], "files_read_unhashed": [], "unrecorded_sources": []'
        try:
            read = files.READ.snapshot()
            if files.READ.version != self._files_version:
                self._files_version = files.READ.version
                self._files_json = ", ".join(
                    [
                        '"files_read": ' + json.dumps(read),
                        '"files_read_unhashed": ' + json.dumps(files.READ.unhashed()),
                        '"unrecorded_sources": ' + json.dumps(files.READ.unrecorded()),
                    ]
                )
        except Exception as exc:
            self.report("listing the files read", exc)
        return self._files_json

    def document(self) -> str:
        """The evidence file's text: the parts that change, and cached JSON for the rest."""
        with self._write_lock:  # the files_read snapshot is not made by two threads at once
            return self._assemble(*self._parts())

    def _parts(self) -> tuple[str, str]:
        """The head and the instances as JSON text: what must show one moment of the run."""
        instances = ",\n".join(inst.json_text() for inst in self.instances)
        return json.dumps(self._head())[:-1], instances

    def _assemble(self, head: str, instances: str) -> str:
        files = self._files_text()  # first: it may report an error that errors must show
        parts = [head, files, '"errors": ' + json.dumps(self.errors)]
        return ", ".join(parts) + ', "instances": [\n' + instances + "\n]}\n"

    def evidence(self) -> dict[str, Any]:
        return json.loads(self.document())

    def write(self, background: bool = False) -> None:
        """Atomically replace this process's evidence file (only the process that made it).

        The records' JSON is made here, on the training thread, while nothing changes them;
        with `background` the rest goes to a writer thread: the files_read snapshot (it
        hashes each repo file read since the last write: 0.1 ms a file, seconds after a
        data loader read thousands in the repo) and the file I/O (0.3-0.6 ms, more on a
        slow disk). The writes a killed run is judged by (construction, the first min-steps
        iterations, exit) stay here, so they have landed before the job's next line runs.
        """
        if os.getpid() != self.pid or not self.instances:
            return
        self._last_write = time.monotonic()
        self._dirty = False
        try:
            parts = self._parts()
        except Exception as exc:
            with self._write_lock:
                self._failed(exc)
            return
        self._made += 1
        if background and self._hand_over(self._made, parts):
            return
        self._store(self._made, parts)

    def _hand_over(self, number: int, parts: tuple[str, str]) -> bool:
        """Give the text to the writer thread (started once); False when it cannot run."""
        try:
            with self._wake:
                self._pending = (number, parts)  # an older text not written yet is dropped
                self._wake.notify()
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_pending, name="ddp-codemod-evidence", daemon=True
                )
                self._writer.start()
            return True
        except Exception as exc:  # no threads here (a restricted interpreter)
            self.report("starting the evidence writer thread", exc)
            self._writer = None
            return False

    def _write_pending(self) -> None:
        """The writer thread: write each handed-over text, newest first, forever."""
        pid = os.getpid()
        while os.getpid() == pid:
            with self._wake:
                while self._pending is None:
                    self._wake.wait()
                number, parts = self._pending
                self._pending = None
            self._store(number, parts)

    def _store(self, number: int, parts: tuple[str, str]) -> None:
        """Write text `number` (head and instances) unless a newer one is on disk already."""
        with self._write_lock:
            if number <= self._written:
                return
            self._written = number
            try:
                text = self._assemble(*parts)
                os.makedirs(self.out, exist_ok=True)
                _source.write_text(self.path, text)
            except Exception as exc:
                self._failed(exc)
            else:
                _status.STATUS.note("wrote", path=self.path)

    def _failed(self, exc: BaseException) -> None:
        _status.STATUS.note("write_failed", path=self.path, error=_error(exc))
        self.report(f"writing {self.path}", exc)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


RECORDER = Recorder(dict(os.environ))


def patch(module: Any) -> None:
    """Entry point for sitecustomize: patch the just-executed torch.nn.parallel.distributed."""
    try:
        RECORDER.patch(module)
    except Exception as exc:
        RECORDER.report("patching DistributedDataParallel", exc)
