"""Map a pure function over items on a process pool, results in input order.

A pool costs tens of milliseconds to start with fork and a few hundred with spawn (each
worker imports the package again), while the byte pre-filter leaves most runs a handful
of files to parse: small work runs in-process. The function must be importable at module
level and its arguments picklable, so the same code runs under spawn (macOS, Windows).
"""

from __future__ import annotations

import functools
import math
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Below this many bytes of candidate files, a pool does not pay. Parsing costs ~0.9 ms per
# KB; a fork pool adds ~20-40 ms (start, pickling, results) and on a 2-core machine with
# other load gave no gain at 210 KB; a spawn pool re-imports the package in every worker
# (~300 ms).
MIN_BYTES = {"fork": 256 * 1024, "spawn": 2 * 1024 * 1024}


# Below this many bytes of a project's files, gathering its facts in a forked child
# (`Background`) does not pay: the fork of a process holding them costs milliseconds.
BACKGROUND_BYTES = 4 * 1024 * 1024


def default_jobs() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def start_method() -> str:
    """fork where it is cheap and safe (Linux, a process without threads); spawn elsewhere."""
    return "fork" if sys.platform == "linux" else "spawn"


def _die_with_parent(parent: int) -> None:
    """Pool initializer: a worker whose parent was killed must not live on.

    On Linux the kernel sends SIGKILL when the parent dies (PR_SET_PDEATHSIG); elsewhere
    each task first checks that the parent is still there.
    """
    if sys.platform == "linux":
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # died before prctl took effect
        os._exit(1)


def _guarded(fn: Callable[..., R], parent: int, *args: Any) -> R:
    if os.getppid() != parent:
        os._exit(1)
    return fn(*args)


def _pool(workers: int, context: Any) -> Any:
    from concurrent.futures import ProcessPoolExecutor

    parent = os.getpid()
    return ProcessPoolExecutor(
        workers, mp_context=context, initializer=_die_with_parent, initargs=(parent,)
    ), parent


def worth_a_pool(work_bytes: int, jobs: int) -> bool:
    return jobs > 1 and work_bytes >= MIN_BYTES[start_method()]


def map_ordered(
    fn: Callable[..., R],
    *columns: Sequence[Any],
    jobs: int,
    method: str | None = None,
    each: Callable[[int, R], None] | None = None,
) -> list[R]:
    """[fn(a, b, ...) for a, b, ... in zip(*columns)], on `jobs` processes when jobs > 1.

    `each(index, result)` is called here as the results arrive, in order: work it does
    overlaps the pool's on the items still being computed."""
    results: list[R] = []
    for result in _map(fn, columns, jobs, method):
        if each is not None:
            each(len(results), result)
        results.append(result)
    return results


def _map(
    fn: Callable[..., R], columns: Sequence[Sequence[Any]], jobs: int, method: str | None
) -> Iterator[R]:
    count = min(len(column) for column in columns) if columns else 0
    if jobs <= 1 or count < 2:
        yield from (fn(*args) for args in zip(*columns))
        return
    import multiprocessing  # ~17 ms of imports, paid only when a pool starts

    workers = min(jobs, count)
    # a few chunks per worker: balanced, and one pickle per chunk shares the objects that
    # every item carries (the project's subclasses and evidence)
    chunksize = max(1, math.ceil(count / (workers * 4)))
    context = multiprocessing.get_context(method or start_method())
    pool, parent = _pool(workers, context)
    with pool:
        task = functools.partial(_guarded, fn, parent)
        yield from pool.map(task, *columns, chunksize=chunksize)


class Background(Generic[R]):
    """fn() computed in a forked child while this process goes on with other work.

    The child inherits everything fn needs (nothing is pickled on the way in) and sends
    back only the pickled result. `result()` waits for it; where no child could be
    forked, or it died or raised, fn runs here then, so the answer (or the exception)
    is the one a call in this process would give.
    """

    def __init__(self, fn: Callable[[], R], fork: bool = True) -> None:
        self._fn = fn
        self._pid = 0
        self._read = -1
        if fork and start_method() == "fork":
            self._start()

    def _start(self) -> None:
        import pickle

        parent = os.getpid()
        read, write = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read)
            os.close(write)
            return
        if pid == 0:  # the child: never returns into the caller's code
            code = 1
            try:
                os.close(read)
                _die_with_parent(parent)
                payload = pickle.dumps(self._fn(), protocol=pickle.HIGHEST_PROTOCOL)
                with os.fdopen(write, "wb") as out:
                    out.write(payload)
                code = 0
            finally:
                os._exit(code)  # no atexit handlers, no flush of the parent's buffers
        os.close(write)
        self._pid, self._read = pid, read

    def result(self) -> R:
        import pickle

        if not self._pid:
            return self._fn()
        with os.fdopen(self._read, "rb") as pipe:
            payload = pipe.read()
        _, status = os.waitpid(self._pid, 0)
        self._pid = 0
        if status != 0 or not payload:
            return self._fn()
        result: R = pickle.loads(payload)
        return result


def completed(
    fn: Callable[[T], R],
    items: Sequence[T],
    jobs: int,
    on_error: Callable[[T, BaseException], R],
    method: str | None = None,
) -> Iterator[tuple[int, R]]:
    """(index, fn(item)) as each item finishes; `on_error` turns a lost worker into a result."""
    if jobs <= 1 or len(items) < 2:
        for index, item in enumerate(items):
            yield index, fn(item)
        return
    import multiprocessing
    from concurrent.futures import as_completed

    context = multiprocessing.get_context(method or start_method())
    pool, parent = _pool(min(jobs, len(items)), context)
    with pool:
        futures = {
            pool.submit(_guarded, fn, parent, item): index for index, item in enumerate(items)
        }
        for future in as_completed(futures):
            index = futures[future]
            try:
                yield index, future.result()
            except Exception as exc:  # the worker died (killed, out of memory)
                yield index, on_error(items[index], exc)
