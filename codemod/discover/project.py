"""Find a target repo's root and read its `[tool.ddp-codemod]` table.

The root anchors everything a repo says about itself: allowlist paths in its
pyproject.toml, `exclude` patterns, evidence under `.ddp-codemod/`, module names.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from codemod.discover import gitignore
from codemod.model import EVIDENCE_DIR

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9 / 3.10 only
    import tomli as tomllib

TABLE = "ddp-codemod"
DEFAULT_MIN_STEPS = 3


@dataclass(frozen=True)
class ProjectConfig:
    """What a repo's pyproject.toml says; defaults when it says nothing."""

    root: Path
    pyproject: Path | None = None
    allow: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    min_steps: int = DEFAULT_MIN_STEPS
    errors: tuple[str, ...] = field(default=())


def has_our_table(pyproject: Path) -> bool:
    try:
        data = pyproject.read_bytes()
    except OSError:
        return False
    return b"[tool." + TABLE.encode() in data or b'"' + TABLE.encode() + b'"' in data


def find_root(start: Path) -> Path:
    """The nearest folder at or above `start` that holds our config, evidence or `.git`."""
    for folder in (start, *start.parents):  # os.path: an unreadable folder is no error here
        pyproject = folder / "pyproject.toml"
        if (os.path.isfile(pyproject) and has_our_table(pyproject)) or os.path.isdir(
            folder / EVIDENCE_DIR
        ):
            return folder
        if os.path.exists(folder / ".git"):
            return folder
    return start


def _strings(value: object, key: str, errors: list[str]) -> tuple[str, ...]:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    errors.append(f"[tool.{TABLE}] {key} must be a list of strings")
    return ()


def _selectors(texts: tuple[str, ...], pyproject: Path, errors: list[str]) -> tuple[str, ...]:
    from codemod.verdicts.allowlist import usable

    good, bad = usable(texts, pyproject.name, pyproject.parent)
    errors.extend(f"[tool.{TABLE}] allow: {message}" for message in bad)
    return tuple(good)


def _patterns(patterns: tuple[str, ...], errors: list[str]) -> tuple[str, ...]:
    good = []
    for pattern in patterns:
        try:
            gitignore.compile_line(pattern)
        except gitignore.PatternError as exc:
            errors.append(f"[tool.{TABLE}] exclude: invalid pattern {pattern!r} ({exc}); ignored")
        else:
            good.append(pattern)
    return tuple(good)


def load(root: Path) -> ProjectConfig:
    """Read `[tool.ddp-codemod]` from root/pyproject.toml; problems become error lines."""
    pyproject = root / "pyproject.toml"
    if not os.path.isfile(pyproject):
        return ProjectConfig(root)
    try:
        data = tomllib.loads(pyproject.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return ProjectConfig(root, pyproject, errors=(f"cannot read pyproject.toml: {exc}",))
    tool = data.get("tool", {})
    if not isinstance(tool, dict):
        return ProjectConfig(root, pyproject, errors=("`tool` must be a table",))
    table = tool.get(TABLE)
    if table is None:
        return ProjectConfig(root, pyproject)
    errors: list[str] = []
    if not isinstance(table, dict):
        return ProjectConfig(root, pyproject, errors=(f"[tool.{TABLE}] must be a table",))
    allow: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    min_steps = DEFAULT_MIN_STEPS
    for key, value in table.items():
        if key == "allow":
            allow = _selectors(_strings(value, key, errors), pyproject, errors)
        elif key == "exclude":
            exclude = _patterns(_strings(value, key, errors), errors)
        elif key == "min-steps":
            if isinstance(value, int) and not isinstance(value, bool) and value >= 2:
                min_steps = value
            else:
                errors.append(f"[tool.{TABLE}] min-steps must be an integer >= 2")
        else:
            errors.append(f"[tool.{TABLE}] has an unknown key {key!r}")
    return ProjectConfig(root, pyproject, allow, exclude, min_steps, tuple(errors))
