"""The CLI runs its commands with fewer garbage collections, and gives the interpreter
back as it found it (a library user's process must not keep our thresholds)."""

from __future__ import annotations

import gc

from click.testing import CliRunner

from codemod.cli.main import main
from codemod.gc_tuning import YOUNG_THRESHOLD, fewer_collections


def test_block_raises_the_young_threshold_and_freezes() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold()[0] >= YOUNG_THRESHOLD
        assert gc.get_threshold()[1:] == before[1:]
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_restored_after_an_exception() -> None:
    before = gc.get_threshold()
    try:
        with fewer_collections():
            raise RuntimeError
    except RuntimeError:
        pass
    assert gc.get_threshold() == before


def test_commands_run_inside_it(tmp_path, monkeypatch) -> None:
    seen: list[int] = []
    import codemod.cli.scan as scan_cli

    real = scan_cli._run

    def spy(*args, **kwargs):
        seen.append(gc.get_threshold()[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(scan_cli, "_run", spy)
    (tmp_path / "a.py").write_text("x = 1\n")
    result = CliRunner().invoke(main, ["scan", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert seen and seen[0] >= YOUNG_THRESHOLD
