"""DDP built by accelerate and Lightning under torchrun: the repo frames pair it with user code.

CI installs both (`pip install accelerate lightning` after torch) and fails if they are
missing; elsewhere these skip.
"""

from __future__ import annotations

from pathlib import Path

from tests.ddp_runs import (
    ACCELERATE,
    LIGHTNING,
    Traced,
    frame_functions,
    require,
    scan_json,
    script,
    torchrun,
    trace,
    write_repo,
)


def _check(traced: Traced, user_functions: list[tuple[str, str]]) -> None:
    assert traced.returncode == 0, traced.proc.stderr[-3000:]
    assert [e["rank"] for e in traced.evidence] == [0, 1]
    for ev in traced.evidence:
        assert ev["errors"] == [] and ev["finished"] is True
        (inst,) = ev["instances"]
        # the constructor call is the framework's own code, so no repo call site
        assert inst["call_site"] is None
        assert all(not f["path"].startswith(("/", "..")) for f in inst["frames"])
        assert frame_functions(inst)[: len(user_functions)] == user_functions
        assert inst["find_unused_parameters"] is True
        assert inst["iterations"] == 4
        assert inst["unused"] == {"unused.weight": 4, "unused.bias": 4}


def _framework_site_is_unsafe(repo: Path, kind: str) -> None:
    """The static side pairs the framework site through the function on the stack."""
    (site,) = [s for s in scan_json(repo)["sites"] if s["kind"] == kind]
    assert site["verdict"] == "unsafe", site
    assert site["unused"] == {"unused.bias": 4, "unused.weight": 4}


def test_accelerate_prepare(tmp_path: Path):
    require("accelerate")
    repo = write_repo(tmp_path, {"train.py": script(ACCELERATE)})
    traced = trace(repo, torchrun("train.py"))
    _check(traced, [("train.py", "setup"), ("train.py", "main"), ("train.py", "<module>")])
    setup_frame = traced.evidence[0]["instances"][0]["frames"][0]
    text = (repo / "train.py").read_text().splitlines()
    assert "accelerator.prepare(" in text[setup_frame["line"] - 1]
    _framework_site_is_unsafe(repo, "accelerate")


def test_lightning_ddp_strategy(tmp_path: Path):
    require("lightning")
    repo = write_repo(tmp_path, {"train.py": script(LIGHTNING)})
    traced = trace(repo, torchrun("train.py"))
    _check(traced, [("train.py", "fit"), ("train.py", "<module>")])
    fit_frame = traced.evidence[0]["instances"][0]["frames"][0]
    text = (repo / "train.py").read_text().splitlines()
    assert "trainer.fit(" in text[fit_frame["line"] - 1]
    _framework_site_is_unsafe(repo, "lightning")
