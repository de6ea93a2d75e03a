"""trace, then apply: the whole workflow on a repo with many DDP sites, real torchrun.

One traced run of the recorder tests' model zoo (nine DDP instances, one per behaviour):
`apply --dry-run` must rewrite exactly the sites whose every recorded iteration used every
trainable parameter, `scan` must name the unused parameters of the others, and editing a
traced call must make it stale.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.ddp_runs import clean_env, codemod, git_init, line_of, torchrun, trace, zoo_repo


@pytest.fixture(scope="module")
def traced_zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = zoo_repo(tmp_path_factory.mktemp("zoo"))
    git_init(repo)  # copies of the repo keep its identity: the root commit
    traced = trace(repo, torchrun("train.py"), "--steps", "4", env=clean_env(ZOO_STEPS="6"))
    assert traced.returncode == 0, traced.proc.stderr[-3000:]
    assert len(traced.evidence) == 2
    return repo


def by_marker(repo: Path, report: dict) -> dict[str, dict]:
    text = (repo / "train.py").read_text()
    out = {}
    for marker in ("plain", "never", "third", "frozen", "ranked", "subclass", "teacher", "accum"):
        line = line_of(text, marker)
        (site,) = [s for s in report["sites"] if s["path"] == "train.py" and s["line"] == line]
        out[marker] = site
    helpers = (repo / "helpers.py").read_text()
    line = line_of(helpers, "in-helper")
    (out["in-helper"],) = [
        s for s in report["sites"] if s["path"] == "helpers.py" and s["line"] == line
    ]
    return out


def test_scan_verdicts_follow_the_recorded_iterations(traced_zoo: Path):
    result = codemod(traced_zoo, "scan", ".", "--format", "json")
    assert result.returncode == 0, result.stderr
    sites = by_marker(traced_zoo, json.loads(result.stdout))
    verdicts = {marker: site["verdict"] for marker, site in sites.items()}
    assert verdicts == {
        "plain": "safe",
        "frozen": "safe",
        "in-helper": "safe",
        "subclass": "safe",
        "never": "unsafe",
        "third": "unsafe",
        "ranked": "unsafe",
        "accum": "unsafe",
        "teacher": "unknown",  # only no_grad forwards: nothing proves anything
    }
    assert sites["never"]["unused"] == {"unused.bias": 4, "unused.weight": 4}
    assert set(sites["third"]["unused"]) == {"b.bias", "b.weight", "c.bias", "c.weight"}
    assert set(sites["ranked"]["unused"]) == {"extra.bias", "extra.weight"}  # rank 0 only
    assert set(sites["accum"]["unused"]) == {  # first_only ran only in the no_sync micro-batch
        "b.bias",
        "b.weight",
        "first_only.bias",
        "first_only.weight",
        "never.bias",
        "never.weight",
    }
    assert sites["plain"]["evidence"][0]["ranks"] == [0, 1]
    assert sites["plain"]["evidence"][0]["iterations"] == 4
    assert "0 synchronising iterations" in sites["teacher"]["reason"]


def test_apply_dry_run_rewrites_exactly_the_clean_sites(traced_zoo: Path):
    result = codemod(traced_zoo, "apply", ".", "--dry-run")
    assert result.returncode == 1, result.stderr
    removed = [
        line
        for line in result.stdout.splitlines()
        if line.startswith("-") and not line.startswith("---")
    ]
    markers = sorted(line.rsplit("# site: ", 1)[1] for line in removed)
    assert markers == ["frozen", "in-helper", "plain", "subclass"]
    assert "Would rewrite 4 sites in 2 files" in result.stderr


def test_editing_a_traced_call_makes_it_stale(traced_zoo: Path, tmp_path: Path):
    repo = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(traced_zoo), str(repo)], check=True)
    train = repo / "train.py"
    train.write_text(
        train.read_text().replace(
            "plain = DDP(Plain(), find_unused_parameters=True)",
            "plain = DDP(Plain(), find_unused_parameters=True, bucket_cap_mb=1)",
        )
    )
    result = codemod(repo, "scan", ".", "--format", "json")
    sites = by_marker(repo, json.loads(result.stdout))
    assert sites["plain"]["verdict"] == "stale"
    assert "trace again" in sites["plain"]["reason"]
    # the run read train.py, which changed: what it proved about the other calls may not
    # hold for the code as it is now
    assert sites["frozen"]["verdict"] == "stale"
    assert "read files that changed since: train.py" in sites["frozen"]["reason"]
    assert sites["never"]["verdict"] == "unsafe"  # an unused parameter stays a finding
