"""Read a file's bytes without trusting what the name points at.

A repo may hold a FIFO named `x.py` (an open would block forever) or a symlink to
`/dev/zero` (a read would never end), so only regular files are read, the open never
blocks, and no more than a bounded number of bytes is read per file.
"""

from __future__ import annotations

import os
import stat

MB = 1024 * 1024
SCAN_LIMIT = 16 * MB  # larger files are not scanned: no training script is this big


class ReadError(Exception):
    """Why a file was not read; one line."""


def size_mb(size: int) -> str:
    """`17 MB`, `1.5 MB`: what error lines show."""
    value = size / MB
    return f"{value:.0f} MB" if value >= 10 else f"{value:.1f} MB"


def read_regular(
    path: str | os.PathLike[str], limit: int = SCAN_LIMIT, what: str = "scan"
) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; ReadError otherwise."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ReadError(f"cannot read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ReadError("cannot read: not a regular file")
        if st.st_size > limit:
            raise ReadError(_too_large(st.st_size, limit, what))
        chunks: list[bytes] = []
        total = 0
        while True:  # the size may grow while we read: never read more than the limit
            chunk = os.read(fd, min(limit + 1 - total, 1 * MB))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise ReadError(_too_large(total, limit, what))
        return b"".join(chunks)
    except OSError as exc:
        raise ReadError(f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _too_large(size: int, limit: int, what: str) -> str:
    return f"too large to {what} ({size_mb(size)}; the limit is {limit // MB} MB)"
