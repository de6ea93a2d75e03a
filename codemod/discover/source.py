"""Decode Python source exactly as Python would, and refuse what cannot round-trip.

Byte-exact output depends on encoding back with the same codec; a file whose bytes do
not survive decode + encode unchanged (lone CR line endings, odd codecs) is never edited.
"""

from __future__ import annotations

import io
import tokenize
from dataclasses import dataclass


class SourceError(Exception):
    """A file's bytes are not usable Python source; the message is one line."""


@dataclass(frozen=True)
class SourceText:
    text: str
    encoding: str  # codec name as tokenize reports it ("utf-8-sig" keeps a BOM)

    def encode(self, text: str) -> bytes:
        return text.encode(self.encoding)


def decode(data: bytes) -> SourceText:
    """Decode with the PEP 263 / BOM rules tokenize uses."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        if "invalid or missing encoding declaration" in str(exc):
            encoding = "utf-8"  # undecodable bytes in the first two lines: say where
        else:
            raise SourceError(str(exc)) from None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1].hex()
        line = data.count(b"\n", 0, exc.start) + 1
        raise SourceError(f"cannot decode as {encoding}: byte 0x{bad} on line {line}") from None
    return SourceText(text, encoding)


def round_trips(source: SourceText, data: bytes) -> bool:
    return source.encode(source.text) == data
