"""H18: `--allow` selectors have one base per run, the current directory, whatever the
PATHs and their order; a selector naming a file outside every PATH matches nothing and
says so."""

from __future__ import annotations

from pathlib import Path

from tests.hostile import SITE
from tests.sources import invoke, write

FIXED = SITE.replace(", find_unused_parameters=True", "")


def test_a_selector_covers_only_the_file_it_names(tmp_path: Path):
    write(tmp_path, "train.py", SITE)
    write(tmp_path, "sub/train.py", SITE)
    result = invoke(tmp_path / "sub", "apply", "train.py", "../train.py", "--allow", "train.py")
    assert result.exit_code == 1, result.stderr
    assert (tmp_path / "sub/train.py").read_text() == FIXED
    assert (tmp_path / "train.py").read_text() == SITE


def test_argument_order_does_not_change_the_answer(tmp_path: Path):
    answers = []
    for args in ((".", "sub"), ("sub", ".")):
        write(tmp_path, "b.py", SITE)
        write(tmp_path, "sub/b.py", SITE)
        result = invoke(tmp_path, "apply", *args, "--allow", "b.py")
        answers.append(
            (result.exit_code, (tmp_path / "b.py").read_text(), (tmp_path / "sub/b.py").read_text())
        )
    assert answers[0] == answers[1] == (1, FIXED, SITE)


def test_selectors_are_relative_to_the_current_directory(tmp_path: Path):
    write(tmp_path, "repo/damo/detector.py", SITE)
    result = invoke(tmp_path, "apply", "repo", "--dry-run", "--allow", "repo/damo/**")
    assert result.exit_code == 1, result.stderr
    result = invoke(tmp_path, "apply", "repo", "--dry-run", "--allow", "damo/**")
    assert result.exit_code == 0
    assert "warning: allowlist selector `damo/**` (--allow) matched no site" in result.stderr


def test_a_selector_may_climb_out_of_the_current_directory(tmp_path: Path):
    write(tmp_path, "train.py", SITE)
    (tmp_path / "sub").mkdir()
    result = invoke(tmp_path / "sub", "apply", "..", "--allow", "../train.py")
    assert result.exit_code == 1, result.stderr
    assert (tmp_path / "train.py").read_text() == FIXED


def test_a_selector_outside_every_file_path_warns(tmp_path: Path):
    write(tmp_path, "train.py", SITE)
    write(tmp_path, "sub/train.py", SITE)
    result = invoke(tmp_path / "sub", "apply", "train.py", "--allow", "../train.py")
    assert result.exit_code == 0
    assert "warning: allowlist selector `../train.py` (--allow) matched no site" in result.stderr
    assert (tmp_path / "train.py").read_text() == SITE


def test_a_selector_for_another_batch_of_files_stays_quiet(tmp_path: Path):
    """pre-commit splits the staged files over several calls from the repo root."""
    write(tmp_path, "train.py", SITE)
    write(tmp_path, "other.py", SITE)
    result = invoke(tmp_path, "apply", "other.py", "--dry-run", "--allow", "train.py")
    assert result.exit_code == 0
    assert "warning" not in result.stderr
