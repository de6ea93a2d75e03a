"""H8: big files are not fed to libcst whole: over 1 MB a file is not rewritten (its
sites are still reported), and below that libcst parses only the statements it edits."""

from __future__ import annotations

import json
from pathlib import Path

import libcst
import pytest

from codemod.edit import rewrite
from tests.hostile import SITE
from tests.sources import invoke, write

FIXED = SITE.replace(", find_unused_parameters=True", "")
FILLER = "".join(f"def f{i}(x):\n    return x + {i}\n\n\n" for i in range(8000))  # ~250 KB


def test_file_over_the_rewrite_limit_is_reported_not_rewritten(tmp_path: Path):
    big = SITE + "#" + "x" * (2 * 1024 * 1024) + "\n"
    write(tmp_path, "big.py", big)
    write(tmp_path, "train.py", SITE)
    result = invoke(tmp_path, "apply", ".", "--allow", "**", "--format", "json")
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert report["errors"] == [
        {
            "path": "big.py",
            "message": "too large to rewrite safely (2.0 MB; the limit is 1 MB); not rewritten",
        }
    ]
    assert [(s["path"], s["changed"]) for s in report["sites"]] == [
        ("big.py", False),
        ("train.py", True),
    ]
    assert (tmp_path / "big.py").read_text() == big
    assert (tmp_path / "train.py").read_text() == FIXED
    scanned = invoke(tmp_path, "scan", ".")
    assert scanned.exit_code == 0
    assert "big.py:2:20: unknown" in scanned.stdout


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    real = libcst.parse_module

    def recording(source, *args, **kwargs):
        sizes.append(len(source))
        return real(source, *args, **kwargs)

    monkeypatch.setattr(rewrite.cst, "parse_module", recording)
    return sizes


def test_libcst_parses_only_the_statements_it_edits(tmp_path: Path, parsed: list[int]):
    text = SITE + FILLER + "other = DDP(m, find_unused_parameters=True)\n" + FILLER
    write(tmp_path, "train.py", text)
    result = invoke(tmp_path, "apply", ".", "--allow", "**")
    assert result.exit_code == 1, result.stderr
    expected = text.replace(", find_unused_parameters=True", "")
    assert (tmp_path / "train.py").read_text() == expected
    assert parsed and max(parsed) < 200, parsed


CASES = {
    "decorated": (
        "import functools\n" + SITE.splitlines()[0] + "\n\n\n@functools.lru_cache()\n"
        "@staticmethod\ndef build(model):\n    return DDP(model,\n"
        "               find_unused_parameters=True)  # why\n" + FILLER,
        "import functools\n" + SITE.splitlines()[0] + "\n\n\n@functools.lru_cache()\n"
        "@staticmethod\ndef build(model):\n    return DDP(model)  # why\n" + FILLER,
    ),
    "semicolons": (
        SITE.splitlines()[0] + "\na = 1; m = DDP(m, find_unused_parameters=True); b = 2\n",
        SITE.splitlines()[0] + "\na = 1; m = DDP(m); b = 2\n",
    ),
    "crlf": (
        SITE.replace("\n", "\r\n") + "x = (\r\n    1,\r\n)\r\n",
        FIXED.replace("\n", "\r\n") + "x = (\r\n    1,\r\n)\r\n",
    ),
    "continuation": (
        SITE.splitlines()[0] + "\nm = \\\n    DDP(m, find_unused_parameters=True)\nz = 3\n",
        SITE.splitlines()[0] + "\nm = \\\n    DDP(m)\nz = 3\n",
    ),
    "two in one block": (
        SITE.splitlines()[0] + "\nif True:\n    a = DDP(m, find_unused_parameters=True)\n"
        "    b = DDP(m, find_unused_parameters=True)\n",
        SITE.splitlines()[0] + "\nif True:\n    a = DDP(m)\n    b = DDP(m)\n",
    ),
    "style false": (
        SITE.splitlines()[0] + "\n" + FILLER[:200] + "m = DDP(m, find_unused_parameters=True)\n",
        SITE.splitlines()[0] + "\n" + FILLER[:200] + "m = DDP(m, find_unused_parameters=False)\n",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_statement_level_edits_are_byte_exact(tmp_path: Path, case: str, parsed: list[int]):
    before, after = CASES[case]
    write(tmp_path, "train.py", before.encode())
    extra = ["--style", "false"] if case == "style false" else []
    result = invoke(tmp_path, "apply", ".", "--allow", "**", *extra)
    assert result.exit_code == 1, result.stderr
    assert (tmp_path / "train.py").read_bytes() == after.encode()
    assert max(parsed) < 400, parsed
