"""H17: every problem has a message, counts come from valid evidence, and one site or
error is one line of text, whatever its path holds."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from codemod import process
from codemod.model import FileError
from codemod.report import text
from tests.hostile import SITE
from tests.sources import invoke, write


def test_cannot_parse_always_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write(tmp_path, "train.py", SITE)

    def out_of_memory(*args, **kwargs):
        raise MemoryError

    # process's own name for the module: pytest itself needs the real ast.parse
    monkeypatch.setattr(process, "ast", types.SimpleNamespace(parse=out_of_memory))
    result = invoke(tmp_path, "scan", ".", "--format", "json")
    assert result.exit_code == 2
    (error,) = json.loads(result.stdout)["errors"]
    assert error == {
        "path": "train.py",
        "message": "cannot parse: the parser ran out of memory (nested too deeply?)",
    }


def test_newline_in_a_path_stays_on_one_line(tmp_path: Path):
    write(tmp_path, "a\nb.py", SITE)
    write(tmp_path, "c\rd.py", "find_unused_parameters = (\n")
    result = invoke(tmp_path, "scan", ".")
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [
        '"a\\nb.py":2:20: unknown: torch-ddp find_unused_parameters=True: no evidence or '
        "allowlist entry covers this site; left unchanged"
    ]
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert errors == [
        "\"c\\rd.py\": error: syntax error at line 1, column 26: '(' was never closed"
    ]


def test_plain_paths_are_shown_as_they_are():
    assert text.error_line(FileError("dir with space/x.py", "m")) == "dir with space/x.py: error: m"
    assert text.shown("naïve/x.py") == "naïve/x.py"
    assert text.shown('t\tab"x\\y.py') == '"t\\tab\\"x\\\\y.py"'


def test_allow_selector_with_a_newline_warns_on_one_line(tmp_path: Path):
    write(tmp_path, "train.py", SITE)
    result = invoke(tmp_path, "apply", ".", "--dry-run", "--allow", "x\ny.py")
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == ['warning: allowlist selector `"x\\ny.py"` (--allow) matched no site']


def test_error_message_with_a_newline_stays_on_one_line():
    assert text.error_line(FileError("x.py", "first\nsecond")) == "x.py: error: first\\nsecond"
