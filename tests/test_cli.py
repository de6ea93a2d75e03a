"""The command-line contract: exit codes, JSON fields, diff format, bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result

from tests.sources import invoke, write

DDP_IMPORT = "from torch.nn.parallel import DistributedDataParallel as DDP\n"
TRUE_SITE = DDP_IMPORT + "model = DDP(model, find_unused_parameters=True)\n"
SITE_FIELDS = {"path", "line", "end_line", "kind", "setting", "value", "verdict", "reason"}


def run(*args: str, cwd: Path) -> Result:
    return invoke(cwd, *args)


# Exit codes -------------------------------------------------------------------------------
def test_apply_exit_codes(tmp_path: Path):
    write(tmp_path, "train.py", TRUE_SITE)
    assert run("apply", ".", cwd=tmp_path).exit_code == 0  # nothing covered: nothing to do
    assert run("apply", ".", "--dry-run", "--allow", "train.py", cwd=tmp_path).exit_code == 1
    assert run("apply", ".", "--allow", "train.py", "--exit-zero", cwd=tmp_path).exit_code == 0
    assert "find_unused_parameters" not in (tmp_path / "train.py").read_text()
    assert run("apply", ".", "--allow", "train.py", cwd=tmp_path).exit_code == 0  # second run


def test_apply_exits_1_when_it_rewrote(tmp_path: Path):
    write(tmp_path, "train.py", TRUE_SITE)
    result = run("apply", ".", "--allow", "train.py", cwd=tmp_path)
    assert result.exit_code == 1
    assert "train.py:2:20: allowed" in result.stdout
    assert "Rewrote 1 site in 1 file." in result.stderr


def test_errors_win_over_changes_and_exit_zero(tmp_path: Path):
    write(tmp_path, "good.py", TRUE_SITE)
    write(tmp_path, "bad.py", "find_unused_parameters = (\n")
    result = run("apply", ".", "--allow", "*.py", "--exit-zero", cwd=tmp_path)
    assert result.exit_code == 2
    assert "find_unused_parameters" not in (tmp_path / "good.py").read_text()
    assert result.stderr.count("error:") == 1
    assert "bad.py: error: syntax error at line 1" in result.stderr


def test_scan_exit_codes(tmp_path: Path):
    write(tmp_path, "train.py", TRUE_SITE)
    assert run("scan", ".", cwd=tmp_path).exit_code == 0
    write(tmp_path, "broken.py", b"x = 'find_unused_parameters \xff'\n")
    result = run("scan", ".", cwd=tmp_path)
    assert result.exit_code == 2
    assert "broken.py: error: cannot decode as utf-8: byte 0xff on line 1" in result.stderr


def test_usage_error_is_exit_2(tmp_path: Path):
    assert run("apply", ".", "--style", "maybe", cwd=tmp_path).exit_code == 2
    assert run("frobnicate", cwd=tmp_path).exit_code == 2


def test_missing_path_is_reported_and_the_rest_goes_on(tmp_path: Path):
    write(tmp_path, "train.py", TRUE_SITE)
    result = run("scan", "nope", "train.py", "--format", "json", cwd=tmp_path)
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert report["errors"] == [{"path": "nope", "message": "no such file or directory"}]
    assert [s["path"] for s in report["sites"]] == ["train.py"]


def test_unreadable_file_is_one_error(tmp_path: Path):
    write(tmp_path, "train.py", TRUE_SITE)
    (tmp_path / "dangling.py").symlink_to(tmp_path / "missing.py")
    result = run("scan", ".", "--format", "json", cwd=tmp_path)
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert report["errors"] == [
        {"path": "dangling.py", "message": "cannot read: No such file or directory"}
    ]
    assert len(report["sites"]) == 1


# JSON -------------------------------------------------------------------------------------
def test_scan_json_fields(tmp_path: Path):
    write(
        tmp_path,
        "pkg/train.py",
        DDP_IMPORT + "model = DDP(\n    model,\n    find_unused_parameters=True,\n)\n",
    )
    result = run("scan", ".", "--format", "json", cwd=tmp_path)
    report = json.loads(result.stdout)
    assert set(report) == {"sites", "errors"}
    (site,) = report["sites"]
    assert set(site) >= SITE_FIELDS
    assert site["path"] == "pkg/train.py"
    assert (site["line"], site["end_line"]) == (2, 5)
    assert (site["kind"], site["setting"], site["value"]) == (
        "torch-ddp",
        "find_unused_parameters",
        "True",
    )
    assert site["verdict"] == "unknown"
    assert site["reason"].endswith("left unchanged")
    assert "changed" not in site


def test_paths_are_relative_to_the_path_argument(tmp_path: Path):
    write(tmp_path, "repo/src/train.py", TRUE_SITE)
    report = json.loads(run("scan", "repo", "--format", "json", cwd=tmp_path).stdout)
    assert report["sites"][0]["path"] == "src/train.py"
    report = json.loads(run("scan", "repo/src/train.py", "--format", "json", cwd=tmp_path).stdout)
    assert report["sites"][0]["path"] == "repo/src/train.py"


def test_apply_json_has_changed(tmp_path: Path):
    write(tmp_path, "train.py", TRUE_SITE + "other = DDP(m, find_unused_parameters=True)\n")
    result = run("apply", ".", "--allow", "train.py:2", "--format", "json", cwd=tmp_path)
    assert result.exit_code == 1
    sites = json.loads(result.stdout)["sites"]
    assert [(s["line"], s["verdict"], s["changed"]) for s in sites] == [
        (2, "allowed", True),
        (3, "unknown", False),
    ]


# Diff -------------------------------------------------------------------------------------
def test_dry_run_diff_headers_and_git_apply(tmp_path: Path):
    repo = tmp_path / "repo"
    write(repo, "damo/detectors/detector.py", TRUE_SITE)
    before = (repo / "damo/detectors/detector.py").read_bytes()
    result = run("apply", "repo", "--dry-run", "--allow", "repo/damo/**", cwd=tmp_path)
    assert result.exit_code == 1
    assert result.stdout.startswith(
        "--- a/damo/detectors/detector.py\n+++ b/damo/detectors/detector.py\n@@ "
    )
    assert (repo / "damo/detectors/detector.py").read_bytes() == before
    subprocess.run(["git", "apply", "-"], cwd=repo, input=result.stdout_bytes, check=True)
    assert (repo / "damo/detectors/detector.py").read_text() == DDP_IMPORT + "model = DDP(model)\n"


def test_dry_run_diff_keeps_crlf_and_latin1_bytes(tmp_path: Path):
    data = b"# -*- coding: latin-1 -*-\r\n" + DDP_IMPORT.encode().replace(b"\n", b"\r\n")
    data += b"NAME = 'Jos\xe9'\r\nmodel = DDP(model, find_unused_parameters=True)\r\n"
    write(tmp_path, "t.py", data)
    result = run("apply", ".", "--dry-run", "--allow", "t.py", cwd=tmp_path)
    assert b"-model = DDP(model, find_unused_parameters=True)\r\n+model = DDP(model)\r\n" in (
        result.stdout_bytes
    )
    subprocess.run(["patch", "-p1", "-s"], cwd=tmp_path, input=result.stdout_bytes, check=True)
    assert (tmp_path / "t.py").read_bytes() == data.replace(b", find_unused_parameters=True", b"")


def test_no_diff_and_no_write_when_nothing_is_covered(tmp_path: Path):
    path = write(tmp_path, "train.py", TRUE_SITE)
    stat = path.stat()
    result = run("apply", ".", cwd=tmp_path)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert path.stat().st_mtime_ns == stat.st_mtime_ns


# Writes -----------------------------------------------------------------------------------
def test_write_keeps_mode_and_follows_symlinks(tmp_path: Path):
    real = write(tmp_path, "real/train.py", TRUE_SITE)
    real.chmod(0o751)
    (tmp_path / "link.py").symlink_to(real)
    assert run("apply", "link.py", "--allow", "link.py", cwd=tmp_path).exit_code == 1
    assert (tmp_path / "link.py").is_symlink()
    assert real.read_text() == DDP_IMPORT + "model = DDP(model)\n"
    assert real.stat().st_mode & 0o777 == 0o751
    assert [p.name for p in real.parent.iterdir()] == ["train.py"]  # no temporary left


def test_files_without_sites_are_never_written(tmp_path: Path):
    untouched = write(tmp_path, "util.py", "# find_unused_parameters is discussed here\nx = 1\n")
    write(tmp_path, "train.py", TRUE_SITE)
    before = untouched.stat().st_mtime_ns
    run("apply", ".", "--allow", "*.py", cwd=tmp_path)
    assert untouched.stat().st_mtime_ns == before


# Selectors and config -------------------------------------------------------------------
def test_unmatched_selector_warns(tmp_path: Path):
    write(tmp_path, "train.py", TRUE_SITE)
    result = run("apply", ".", "--dry-run", "--allow", "trian.py", cwd=tmp_path)
    assert result.exit_code == 0
    assert "warning: allowlist selector `trian.py` (--allow) matched no site" in result.stderr


def test_malformed_pyproject_is_one_error_and_the_run_goes_on(tmp_path: Path):
    write(tmp_path, "pyproject.toml", "[tool.ddp-codemod\nallow = [\n")
    write(tmp_path, "train.py", TRUE_SITE)
    result = run("scan", ".", "--format", "json", cwd=tmp_path)
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert len(report["sites"]) == 1
    (error,) = report["errors"]
    assert error["path"].endswith("pyproject.toml")
    assert error["message"].startswith("cannot read pyproject.toml")


def test_pyproject_unknown_key_is_an_error(tmp_path: Path):
    write(tmp_path, "pyproject.toml", '[tool.ddp-codemod]\nalow = ["train.py"]\n')
    write(tmp_path, "train.py", TRUE_SITE)
    result = run("scan", ".", cwd=tmp_path)
    assert result.exit_code == 2
    assert "unknown key 'alow'" in result.stderr


def test_pyproject_allow_is_relative_to_its_folder(tmp_path: Path):
    write(tmp_path, "repo/pyproject.toml", '[tool.ddp-codemod]\nallow = ["src/train.py"]\n')
    write(tmp_path, "repo/src/train.py", TRUE_SITE)
    result = run("apply", "repo/src", "--dry-run", cwd=tmp_path)
    assert result.exit_code == 1
    assert result.stdout.startswith("--- a/train.py")


# Discovery --------------------------------------------------------------------------------
def test_gitignore_and_default_excludes(tmp_path: Path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    write(tmp_path, ".gitignore", "generated/\n*_tmp.py\n")
    write(tmp_path, "sub/.gitignore", "local.py\n")
    for rel in [
        "train.py",
        "generated/a.py",
        "x_tmp.py",
        "sub/local.py",
        "sub/kept.py",
        ".venv/lib/a.py",
        "build/lib/a.py",
        "node_modules/a.py",
        "env/pyvenv.cfg",
        "env/lib/a.py",
    ]:
        write(tmp_path, rel, TRUE_SITE)
    report = json.loads(run("scan", ".", "--format", "json", cwd=tmp_path).stdout)
    assert sorted(s["path"] for s in report["sites"]) == ["sub/kept.py", "train.py"]


def test_explicit_file_obeys_exclude(tmp_path: Path):
    write(tmp_path, "pyproject.toml", '[tool.ddp-codemod]\nexclude = ["vendor/"]\n')
    write(tmp_path, "vendor/lib.py", TRUE_SITE)
    report = json.loads(run("scan", "vendor/lib.py", "--format", "json", cwd=tmp_path).stdout)
    assert report["sites"] == []


# The real console script ----------------------------------------------------------------
def _script(*args: str, cwd: Path, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "codemod", *args], cwd=cwd, capture_output=True, env=env
    )


def test_module_entry_point_and_version(tmp_path: Path):
    result = _script("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.decode().startswith("ddp-codemod, version ")


def _imported(cwd: Path, *args: str) -> str:
    """Which of torch / libcst a CLI call imported, and its exit code."""
    probe = (
        "import sys; from codemod.cli.main import main\n"
        f"try:\n    main({list(args)!r})\nexcept SystemExit as e:\n    code = e.code\n"
        "print(sorted(m for m in ('torch', 'libcst') if m in sys.modules), code)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def test_static_side_never_imports_torch_and_only_edits_import_libcst(tmp_path: Path):
    write(tmp_path, "a.py", "import torch\nx = 1\n")
    assert _imported(tmp_path, "scan", ".") == "[] 0"
    assert _imported(tmp_path, "apply", ".") == "[] 0"
    write(tmp_path, "b.py", TRUE_SITE)
    assert _imported(tmp_path, "scan", ".") == "[] 0"
    assert _imported(tmp_path, "apply", ".", "--dry-run") == "[] 0"
    assert _imported(tmp_path, "apply", ".", "--dry-run", "--allow", "b.py") == "['libcst'] 1"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_traceback_on_bad_input(tmp_path: Path, fmt: str):
    write(tmp_path, "py2.py", "print 'find_unused_parameters'\n")
    write(tmp_path, "bin.py", b"\x00\xff find_unused_parameters \xfe")
    result = _script("apply", ".", "--allow", "*.py", "--format", fmt, cwd=tmp_path)
    assert result.returncode == 2
    assert b"Traceback" not in result.stderr


# The acceptance case ------------------------------------------------------------
DAMO = """from torch.nn.parallel import DistributedDataParallel as DDP


def build_ddp_model(model, local_rank):
    model = DDP(model,
 device_ids=[local_rank],
 output_device=local_rank,
 broadcast_buffers=False,
 find_unused_parameters=True)
    return model
"""


def test_damo_tree_done_when(tmp_path: Path):
    tree = tmp_path / "tree"
    write(tree, "damo/detectors/detector.py", DAMO)
    allowed = run(
        "apply",
        "tree",
        "--dry-run",
        "--allow",
        "tree/damo/detectors/detector.py::build_ddp_model",  # relative to the current directory
        cwd=tmp_path,
    )
    assert allowed.exit_code == 1
    assert "+ broadcast_buffers=False)\n" in allowed.stdout
    assert "- find_unused_parameters=True)\n" in allowed.stdout
    assert run("apply", "tree", "--dry-run", cwd=tmp_path).exit_code == 0
    report = json.loads(run("scan", "tree", "--format", "json", cwd=tmp_path).stdout)
    assert [(s["path"], s["verdict"]) for s in report["sites"]] == [
        ("damo/detectors/detector.py", "unknown")
    ]


def test_allow_selector_for_a_file_not_passed_is_silent(tmp_path: Path):
    write(tmp_path, "a.py", TRUE_SITE)
    write(tmp_path, "b.py", TRUE_SITE)
    result = run("apply", "a.py", "--dry-run", "--allow", "b.py", cwd=tmp_path)
    assert "warning" not in result.stderr  # pre-commit may pass b.py in another batch
    result = run("apply", "a.py", "--dry-run", "--allow", "a.py:99", cwd=tmp_path)
    assert "`a.py:99` (--allow) matched no site" in result.stderr


# What apply left alone --------------------------------------------------------------------
UNKNOWN_LINE = (
    "train.py:2:20: unknown: torch-ddp find_unused_parameters=True: no evidence or allowlist "
    "entry covers this site; left unchanged"
)


@pytest.mark.parametrize("dry_run", [True, False])
def test_apply_lists_each_site_left_alone_and_a_hint(tmp_path: Path, dry_run: bool):
    write(tmp_path, "train.py", TRUE_SITE + "off = DDP(m, find_unused_parameters=False)\n")
    args = ("--dry-run",) if dry_run else ()
    result = run("apply", ".", *args, cwd=tmp_path)
    assert result.exit_code == 0
    assert result.stdout == ""
    verb = "Would rewrite" if dry_run else "Rewrote"
    lines = result.stderr.splitlines()
    assert lines[:2] == [  # an `off` site needs nothing: no line
        UNKNOWN_LINE,
        f"{verb} 0 sites in 0 files; left alone 2 sites: 1 unknown, 1 off.",
    ]
    (hint,) = lines[2:]
    assert hint.startswith("hint: ")
    for step in ("ddp-codemod trace -- ", "ddp-codemod probe MODULE:FACTORY --site", "--allow"):
        assert step in hint


def test_apply_gives_no_hint_when_nothing_left_alone_can_be_covered(tmp_path: Path):
    write(tmp_path, "a.py", TRUE_SITE)
    write(tmp_path, "b.py", DDP_IMPORT + "m = DDP(m, find_unused_parameters=flag)\n")
    result = run("apply", ".", "--dry-run", "--allow", "a.py", cwd=tmp_path)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("b.py:2:12: dynamic: torch-ddp find_unused_parameters=flag: ")
    assert lines[1:] == ["Would rewrite 1 site in 1 file; left alone 1 site: 1 dynamic."]


# --help -----------------------------------------------------------------------------------
def _help(*command: str) -> str:
    result = invoke(Path.cwd(), *command, "--help")
    assert result.exit_code == 0
    return " ".join(result.stdout.split())  # wrapping-independent


def test_scan_and_apply_help_list_their_exit_codes():
    assert "Exit codes: 0 no errors, whatever the verdicts 2 usage error" in _help("scan")
    text = _help("apply")
    assert "Exit codes: 0 nothing to change 1 something was rewritten" in text
    assert "--exit-zero" in text.split("Exit codes:")[1]


def test_every_probe_option_has_a_description():
    text = invoke(Path.cwd(), "probe", "--help").stdout
    options = text.split("Options:")[1]
    for option in ("--world-size W", "--format [text|json]"):
        (line,) = [ln for ln in options.splitlines() if ln.strip().startswith(option)]
        described = re.sub(r"\[default: [^]]*\]", "", line.split(option, 1)[1])
        assert described.strip(), f"{option} has no description"


def test_top_level_help_gives_the_workflow_and_exit_codes():
    text = invoke(Path.cwd(), "--help").stdout
    workflow = text.split("Workflow, from the repo root:")[1]
    lines = [ln.strip() for ln in workflow.splitlines() if ln.strip()]
    assert lines[0].startswith("ddp-codemod trace --steps 4 -- torchrun")
    assert lines[1].startswith("ddp-codemod scan .")
    assert lines[2].startswith("ddp-codemod apply . --dry-run")
    assert "Exit codes:" in text


def test_allow_in_file_mode_warns_only_for_the_files_given(tmp_path: Path):
    write(tmp_path, "pyproject.toml", '[tool.ddp-codemod]\nexclude = ["vendor/"]\n')
    write(tmp_path, "a.py", TRUE_SITE)
    write(tmp_path, "util.py", "x = 1\n")
    write(tmp_path, "vendor/lib.py", TRUE_SITE)
    files = ("a.py", "util.py", "vendor/lib.py")
    for selector in ("util.py", "vendor/lib.py", "vendor/*.py", "a.py::nowhere"):
        result = run("apply", *files, "--dry-run", "--allow", selector, cwd=tmp_path)
        assert f"`{selector}` (--allow) matched no site" in result.stderr, selector
    for selector in ("other.py", "other/*.py"):  # another batch of files may hold it
        result = run("apply", *files, "--dry-run", "--allow", selector, cwd=tmp_path)
        assert "warning" not in result.stderr, selector


def test_allow_help_says_when_an_unmatched_selector_is_silent():
    text = _help("apply")
    assert "When only files are given" in text
    assert "names none of them" in text
