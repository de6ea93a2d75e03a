"""A config's evidence rests on what a run chose: the configs its command line names and
what those refer to; a file other configs name is covered only when each of them is.

Reproduces the unsafe rewrites of issue #10 part 1: a shared include made safe by one
traced experiment, a config the trainer reads on every run, and a registry that reads a
whole folder.
"""

from __future__ import annotations

from pathlib import Path

from tests.evidence_docs import call_site, instance, write_run
from tests.sources import invoke_json

TRAIN = """from torch.nn.parallel import DistributedDataParallel as DDP


def build(model, cfg):
    return DDP(model, find_unused_parameters=cfg["find_unused_parameters"])
"""
SHARED = "optimizer: sgd\nfind_unused_parameters: true\n"


def make(tmp_path: Path, tree: dict[str, str]) -> Path:
    root = tmp_path / "repo"
    for rel, text in {"tools/train.py": TRAIN, **tree}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def traced(repo: Path, run_id: str, argv: tuple[str, ...], read: tuple[str, ...]) -> None:
    """A clean two-rank run of `argv` (a torchrun worker's sys.argv) that read `read`."""

    def inst() -> dict:
        return instance(call_site(repo, "tools/train.py", 5, 5, "build"))

    write_run(
        repo,
        [[inst()], [inst()]],
        run_id=run_id,
        command=("torchrun", "--nproc_per_node=2", *argv),
        argv=argv,
        files_read=("tools/train.py", *read),
    )


def config_sites(repo: Path, *args: str) -> dict[str, dict]:
    _, report, _ = invoke_json(repo, "apply", ".", "--dry-run", *args)
    return {s["path"]: s for s in report["sites"] if s["kind"] in ("config-py", "yaml")}


INCLUDES = {
    "configs/shared/opt.yml": SHARED,
    "configs/a.yml": "__include__: ['./shared/opt.yml']\nmodel: small\n",
    "configs/b.yml": "__include__:\n  - ./shared/opt.yml\nmodel: with_aux_head\n",
}


def test_a_shared_include_waits_for_every_config_that_names_it(tmp_path: Path):
    repo = make(tmp_path, INCLUDES)
    traced(repo, "run-a", ("tools/train.py", "--config", "configs/a.yml"), INCLUDES.keys())
    shared = config_sites(repo)["configs/shared/opt.yml"]
    assert (shared["verdict"], shared["changed"]) == ("unknown", False)
    assert "named by configs/b.yml" in shared["reason"]
    traced(repo, "run-b", ("tools/train.py", "--config=configs/b.yml"), INCLUDES.keys())
    shared = config_sites(repo)["configs/shared/opt.yml"]
    assert (shared["verdict"], shared["changed"]) == ("safe", True)


def test_a_referrer_in_a_json_file_counts_too(tmp_path: Path):
    tree = {**INCLUDES, "configs/c.json": '{"include": ["shared/opt.yml"], "model": "big"}\n'}
    repo = make(tmp_path, tree)
    for run_id, config in (("run-a", "configs/a.yml"), ("run-b", "configs/b.yml")):
        traced(repo, run_id, ("tools/train.py", config), tuple(tree))
    shared = config_sites(repo)["configs/shared/opt.yml"]
    assert shared["verdict"] == "unknown"
    assert "named by configs/c.json" in shared["reason"]


def test_a_config_read_on_every_run_is_not_chosen_by_an_experiment(tmp_path: Path):
    tree = {"configs/runtime.yml": SHARED, "configs/exp.yml": "model: small\n"}
    repo = make(tmp_path, tree)
    traced(repo, "run-1", ("tools/train.py", "configs/exp.yml"), tuple(tree))
    runtime = config_sites(repo)["configs/runtime.yml"]
    assert (runtime["verdict"], runtime["changed"]) == ("unknown", False)
    assert "read by the program on every run" in runtime["reason"]
    allowed = config_sites(repo, "--allow", "configs/runtime.yml")["configs/runtime.yml"]
    assert (allowed["verdict"], allowed["changed"]) == ("allowed", True)


def test_an_entry_config_that_sets_true_itself_is_safe(tmp_path: Path):
    tree = {"configs/exp.yml": SHARED}
    repo = make(tmp_path, tree)
    traced(repo, "run-1", ("tools/train.py", "-c", "configs/exp.yml"), tuple(tree))
    exp = config_sites(repo)["configs/exp.yml"]
    assert (exp["verdict"], exp["changed"]) == ("safe", True)


def test_a_registry_that_reads_every_config_proves_only_the_one_named(tmp_path: Path):
    tree = {"configs/a.yaml": SHARED, "configs/b.yaml": SHARED}
    repo = make(tmp_path, tree)
    traced(repo, "run-1", ("tools/train.py", "--cfg", "configs/a.yaml"), tuple(tree))
    found = config_sites(repo)
    assert found["configs/a.yaml"]["verdict"] == "safe"
    assert found["configs/b.yaml"]["verdict"] == "unknown"


def test_an_absolute_path_on_the_command_line_is_an_entry(tmp_path: Path):
    tree = {"configs/exp.yml": SHARED}
    repo = make(tmp_path, tree)
    absolute = str((repo / "configs/exp.yml").resolve())
    traced(repo, "run-1", ("tools/train.py", f"config={absolute}"), tuple(tree))
    assert config_sites(repo)["configs/exp.yml"]["verdict"] == "safe"
