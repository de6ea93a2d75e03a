"""Config sites and evidence: a config is covered when a clean traced run read it, and a
base config only when every config inheriting its setting is covered too."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.evidence_docs import call_site, instance, write_run
from tests.sources import invoke_json

TRAIN = """from torch.nn.parallel import DistributedDataParallel as DDP


def build(model, cfg):
    return DDP(model, find_unused_parameters=cfg.find_unused_parameters)
"""
BASE = "default_scope = 'mmdet'\nfind_unused_parameters = True\n"
TREE = {
    "tools/train.py": TRAIN,
    "configs/_base_/default_runtime.py": BASE,
    "configs/a.py": "_base_ = ['./_base_/default_runtime.py']\nmodel = dict(depth=18)\n",
    "configs/b.py": "_base_ = ['./_base_/default_runtime.py']\nmodel = dict(depth=50)\n",
    "configs/exp.yaml": "trainer:\n  find_unused_parameters: true  # why not\n",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for rel, text in TREE.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def run_cli(repo: Path, *args: str) -> tuple[int, dict]:
    code, report, _ = invoke_json(repo, *args)
    return code, report


def sites(report: dict) -> dict[str, dict]:
    return {s["path"]: s for s in report["sites"] if s["kind"] in ("config-py", "yaml")}


def traced(repo: Path, config: str, run_id: str, **kw) -> None:
    """A clean two-rank run of tools/train.py that read `config` (and its bases)."""
    read = ["tools/train.py", config]
    if config.endswith(".py"):
        read.append("configs/_base_/default_runtime.py")

    def inst() -> dict:
        return instance(call_site(repo, "tools/train.py", 5, 5, "build"), **kw)

    argv = ("tools/train.py", "--config", config)  # a trainer names its config, as real ones do
    write_run(
        repo,
        [[inst()], [inst()]],
        run_id=run_id,
        files_read=tuple(read),
        command=("torchrun", "--nproc_per_node=2", *argv),
        argv=argv,
    )


def test_scan_lists_config_sites_with_dotted_settings(repo: Path):
    _, report = run_cli(repo, "scan", ".")
    found = {(s["path"], s["kind"], s["setting"], s["verdict"]) for s in report["sites"]}
    assert found == {
        ("tools/train.py", "torch-ddp", "find_unused_parameters", "dynamic"),
        ("configs/_base_/default_runtime.py", "config-py", "find_unused_parameters", "unknown"),
        ("configs/exp.yaml", "yaml", "trainer.find_unused_parameters", "unknown"),
    }


def test_base_with_an_untraced_child_stays_and_names_it(repo: Path):
    traced(repo, "configs/a.py", "run-a")
    code, report = run_cli(repo, "apply", ".")
    base = sites(report)["configs/_base_/default_runtime.py"]
    assert code == 0
    assert base["verdict"] == "unknown"
    assert "inherited by configs/b.py, which no evidence" in base["reason"]
    assert (repo / "configs/_base_/default_runtime.py").read_text() == BASE


def test_base_is_safe_when_every_heir_was_traced(repo: Path):
    traced(repo, "configs/a.py", "run-a")
    traced(repo, "configs/b.py", "run-b")
    code, report = run_cli(repo, "apply", ".", "--dry-run")
    base = sites(report)["configs/_base_/default_runtime.py"]
    assert (code, base["verdict"], base["changed"]) == (1, "safe", True)
    assert [r["command"] for r in base["evidence"]] == [
        f"torchrun --nproc_per_node=2 tools/train.py --config configs/{c}.py" for c in "ab"
    ]
    code, report = run_cli(repo, "apply", ".")
    assert code == 1
    assert (repo / "configs/_base_/default_runtime.py").read_text() == BASE.replace("True", "False")
    assert (repo / "configs/exp.yaml").read_text() == TREE["configs/exp.yaml"]  # never read


def test_an_allowlisted_heir_counts_as_covered(repo: Path):
    traced(repo, "configs/a.py", "run-a")
    _, report = run_cli(repo, "scan", ".")
    assert sites(report)["configs/_base_/default_runtime.py"]["verdict"] == "unknown"
    code, report = run_cli(repo, "apply", ".", "--dry-run", "--allow", "configs/b.py")
    assert (code, sites(report)["configs/_base_/default_runtime.py"]["verdict"]) == (1, "safe")


def test_unused_parameter_in_a_child_run_makes_the_base_unsafe(repo: Path):
    traced(repo, "configs/a.py", "run-a", unused={"aux_head.weight": 4})
    traced(repo, "configs/b.py", "run-b")
    _, report = run_cli(repo, "apply", ".", "--allow", "configs/_base_/default_runtime.py")
    base = sites(report)["configs/_base_/default_runtime.py"]
    assert base["verdict"] == "unsafe"
    assert base["unused"] == {"aux_head.weight": 4}


def test_yaml_read_by_a_clean_run_is_safe(repo: Path):
    traced(repo, "configs/exp.yaml", "run-y")
    code, report = run_cli(repo, "apply", ".")
    assert (code, sites(report)["configs/exp.yaml"]["verdict"]) == (1, "safe")
    assert (
        repo / "configs/exp.yaml"
    ).read_text() == "trainer:\n  find_unused_parameters: false  # why not\n"


def test_editing_a_traced_config_makes_it_stale(repo: Path):
    traced(repo, "configs/exp.yaml", "run-y")
    (repo / "configs/exp.yaml").write_text(TREE["configs/exp.yaml"] + "seed: 1\n")
    _, report = run_cli(repo, "scan", ".")
    site = sites(report)["configs/exp.yaml"]
    assert site["verdict"] == "stale"
    assert "changed since" in site["reason"]


def test_a_run_that_built_ddp_with_false_does_not_cover_a_config(repo: Path):
    traced(repo, "configs/exp.yaml", "run-y", fup=False)
    _, report = run_cli(repo, "scan", ".")
    assert sites(report)["configs/exp.yaml"]["verdict"] == "unknown"


def test_partial_file_list_still_sees_the_whole_graph(repo: Path):
    traced(repo, "configs/a.py", "run-a")
    code, report = run_cli(repo, "apply", "configs/_base_/default_runtime.py")
    (base,) = report["sites"]
    assert (code, base["verdict"]) == (0, "unknown")
    assert "configs/b.py" in base["reason"]
