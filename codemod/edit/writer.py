"""Atomic in-place writes: a crash leaves either the old file or the new one, never half.

A rename replaces the inode, so a write is refused where that would change more than the
bytes: read-only files (like black), files with other hard links (the other names would
keep the old text), and files whose owner the new inode could not keep. Right before the
rename the file is checked again, so an editor's save during the write is never lost.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
import time
from pathlib import Path

TEMP_SUFFIX = ".ddp-codemod"
# `.train.py.k2j4x9qa.ddp-codemod`: mkstemp's 8 random characters between name and suffix
_TEMP_NAME = re.compile(r"\A\..+\.[a-z0-9_]{8}" + re.escape(TEMP_SUFFIX) + r"\Z")
STALE_AFTER_S = 60  # a temp file this old belongs to a run that was killed


class WriteError(Exception):
    """The file was left as it was; the message is one line."""


CHANGED = "the file changed while ddp-codemod was running; not written"


def _before_replace(path: Path) -> None:
    """Runs between writing the temp file and the last check; tests change the file here."""


def _identity(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _read(path: Path, limit: int) -> tuple[bytes, os.stat_result]:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise WriteError("not a regular file; not written")
        chunks = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        return b"".join(chunks), st
    finally:
        os.close(fd)


def remove_stale_temps(folder: Path, now: float | None = None) -> None:
    """Delete our own temp files (by name) older than a minute: left by a killed run."""
    now = time.time() if now is None else now
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if not entry.name.endswith(TEMP_SUFFIX) or not _TEMP_NAME.match(entry.name):
                continue
            with contextlib.suppress(OSError):
                st = entry.stat(follow_symlinks=False)
                if (
                    stat.S_ISREG(st.st_mode)
                    and st.st_uid == os.geteuid()
                    and now - st.st_mtime > STALE_AFTER_S
                ):
                    os.unlink(entry.path)


def _refusal(real: Path, st: os.stat_result) -> str | None:
    if not st.st_mode & 0o222 or not os.access(real, os.W_OK):
        return "read-only; not written"
    if st.st_nlink > 1:
        return f"has other hard links ({st.st_nlink} names in all); not written"
    return None


def _keep_owner(fd: int, st: os.stat_result) -> None:
    """Give the temp file the original's owner and group, or refuse the write."""
    mine = os.fstat(fd)
    if (mine.st_uid, mine.st_gid) == (st.st_uid, st.st_gid):
        return
    with contextlib.suppress(PermissionError):
        os.fchown(fd, st.st_uid, st.st_gid)
        return
    if mine.st_uid != st.st_uid:
        raise WriteError(f"owned by another user (uid {st.st_uid}); not written")
    with contextlib.suppress(PermissionError):
        os.fchown(fd, -1, st.st_gid)
        return
    raise WriteError(f"its group (gid {st.st_gid}) cannot be kept; not written")


def replace_bytes(path: Path, expected_old: bytes, new: bytes) -> None:
    """Write `new` over `path` (through symlinks), keeping its mode, owner and group.

    Refuses when the file no longer holds `expected_old`: someone else changed it. The
    temp file is removed on any exception, a KeyboardInterrupt included.
    """
    real = Path(os.path.realpath(path))
    try:
        data, st = _read(real, len(expected_old))
        if data != expected_old:
            raise WriteError(CHANGED)
        refusal = _refusal(real, st)
        if refusal is not None:
            raise WriteError(refusal)
        remove_stale_temps(real.parent)
        fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=TEMP_SUFFIX, dir=real.parent)
    except OSError as exc:
        raise WriteError(f"cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(new)
            out.flush()
            os.fchmod(out.fileno(), stat.S_IMODE(st.st_mode))
            _keep_owner(out.fileno(), st)
            os.fsync(out.fileno())
        _before_replace(real)
        now = os.stat(real)
        if _identity(now) != _identity(st) and _read(real, len(expected_old))[0] != expected_old:
            raise WriteError(CHANGED)
        os.replace(tmp, real)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise WriteError(f"cannot write: {exc.strerror or exc}") from None
        raise
