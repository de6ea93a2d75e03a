"""Unified diffs that `git apply` and `patch -p1` accept, byte for byte.

Works on bytes so CRLF, BOMs and non-UTF-8 encodings reach the patch unchanged.
"""

from __future__ import annotations

import difflib
import re

_LINES = re.compile(rb"[^\n]*\n|[^\n]+$")
_NO_EOL = b"\n\\ No newline at end of file\n"


def unified(rel: str, old: bytes, new: bytes) -> bytes:
    """A diff of one file with `a/<rel>` and `b/<rel>` headers."""
    name = rel.encode("utf-8", "surrogateescape")
    lines = difflib.diff_bytes(
        difflib.unified_diff,
        _LINES.findall(old),  # split on LF only, as git does
        _LINES.findall(new),
        fromfile=b"a/" + name,
        tofile=b"b/" + name,
        lineterm=b"\n",
    )
    out = bytearray()
    for line in lines:
        if line.startswith((b"--- ", b"+++ ", b"@@ ")):
            out += line if line.endswith(b"\n") else line + b"\n"
        elif line.endswith(b"\n"):
            out += line
        else:  # the file's last line has no line ending
            out += line + _NO_EOL
    return bytes(out)
