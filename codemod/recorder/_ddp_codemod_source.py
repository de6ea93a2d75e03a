"""PROVISIONAL (replaced by the recorder branch): source helpers shared by both sides."""

from __future__ import annotations

import hashlib


def source_lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def lines_sha256(lines: list[str], line: int, end_line: int) -> str:
    return hashlib.sha256("\n".join(lines[line - 1 : end_line]).encode("utf-8")).hexdigest()
