"""Atomic in-place writes: a crash leaves either the old file or the new one, never half."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path


class WriteError(Exception):
    """The file was left as it was; the message is one line."""


def replace_bytes(path: Path, expected_old: bytes, new: bytes) -> None:
    """Write `new` over `path` (through symlinks), keeping its mode.

    Refuses when the file no longer holds `expected_old`: someone else changed it.
    """
    real = Path(os.path.realpath(path))
    try:
        if real.read_bytes() != expected_old:
            raise WriteError("the file changed while ddp-codemod was running; not written")
        mode = stat.S_IMODE(real.stat().st_mode)
        fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".ddp-codemod", dir=real.parent)
    except OSError as exc:
        raise WriteError(f"cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(new)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, real)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise WriteError(f"cannot write: {exc.strerror or exc}") from None
