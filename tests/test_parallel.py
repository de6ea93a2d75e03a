"""--jobs: the same result, in the same order, whether files are parsed here or in a pool."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from codemod import api, parallel
from codemod.discover.prefilter import may_hold_site
from codemod.model import RunResult
from tests.evidence_docs import write_run
from tests.sources import BUILD, DDP_IMPORT, traced


def test_map_ordered_keeps_input_order_under_spawn():
    items = [b"x" * i + (b"find_unused_param" if i % 3 else b"") for i in range(40)]
    expected = [may_hold_site(i) for i in items]
    assert parallel.map_ordered(may_hold_site, items, jobs=2, method="spawn") == expected
    assert parallel.map_ordered(may_hold_site, items, jobs=1) == expected


@pytest.mark.parametrize("jobs", [1, 2])
def test_map_ordered_hands_each_result_over_in_order(jobs: int):
    items = [b"x" * i + (b"find_unused_param" if i % 3 else b"") for i in range(40)]
    seen: list[tuple[int, bool]] = []
    results = parallel.map_ordered(
        may_hold_site, items, jobs=jobs, each=lambda i, r: seen.append((i, r))
    )
    assert results == [may_hold_site(i) for i in items]
    assert seen == list(enumerate(results))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_small_work_stays_in_process(monkeypatch, method: str):
    monkeypatch.setattr(parallel, "start_method", lambda: method)
    least = parallel.MIN_BYTES[method]
    assert not parallel.worth_a_pool(least - 1, jobs=8)
    assert not parallel.worth_a_pool(10 * least, jobs=1)
    assert parallel.worth_a_pool(least, jobs=2)
    assert parallel.MIN_BYTES["fork"] < parallel.MIN_BYTES["spawn"]


def _tree(root: Path) -> None:
    files = {
        "pyproject.toml": '[tool.ddp-codemod]\nallow = ["allowed/*.py"]\n',
        "traced.py": BUILD,
        "pkg/__init__.py": "",
        "pkg/ddp.py": "import torch\n\nclass Sub(torch.nn.parallel.DistributedDataParallel):\n"
        "    pass\n",
        "broken.py": "find_unused_parameters = (\n",
    }
    for i in range(12):
        files[f"allowed/a{i}.py"] = DDP_IMPORT + f"m{i} = DDP(m, find_unused_parameters=True)\n"
        files[f"other/o{i}.py"] = (
            f"from pkg.ddp import Sub\nn{i} = Sub(n, find_unused_parameters=True)\n"
        )
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    write_run(root, [[traced(root, "traced.py")], [traced(root, "traced.py")]])


def _run(root: Path, jobs: int) -> RunResult:
    req = api.Request((".",), cwd=root, allow=("other/o1*.py",), rewrite=True, jobs=jobs)
    return api.run(req)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pool_gives_the_serial_result(tmp_path: Path, monkeypatch, method: str):
    _tree(tmp_path)
    serial = _run(tmp_path, jobs=1)
    assert {s.verdict.value for s in serial.sites} == {"allowed", "safe", "unknown"}
    assert len(serial.changes) == 16 and len(serial.errors) == 1
    calls = []
    real = parallel.map_ordered

    def spy(*args, **kw):
        calls.append(kw["jobs"])
        return real(*args, **kw, method=method)

    monkeypatch.setattr(parallel, "MIN_BYTES", {"fork": 0, "spawn": 0})
    monkeypatch.setattr(parallel, "map_ordered", spy)
    pooled = _run(tmp_path, jobs=2)
    assert calls == [2]
    assert pooled.sites == serial.sites
    assert pooled.errors == serial.errors
    assert pooled.warnings == serial.warnings
    assert [(c.rel, c.new) for c in pooled.changes] == [(c.rel, c.new) for c in serial.changes]


def _twice() -> int:
    return 2 * 21


def _raises() -> int:
    raise ValueError("from fn")


@pytest.mark.parametrize("fork", [True, False])
def test_background_gives_the_in_process_result(fork: bool):
    job = parallel.Background(_twice, fork=fork)
    assert bool(job._pid) == (fork and parallel.start_method() == "fork")
    assert job.result() == 42
    with pytest.raises(ValueError, match="from fn"):  # raised here too, by the rerun
        parallel.Background(_raises, fork=fork).result()


def test_background_child_that_dies_is_computed_here():
    parent = os.getpid()

    def dies_in_child() -> int:
        if os.getpid() != parent:
            os._exit(3)
        return 7

    assert parallel.Background(dies_in_child).result() == 7


def _config_tree(root: Path) -> None:
    """Configs that need the project's facts, a Hugging Face call (configs are then
    gathered in the background), evidence that read a config, and a broken evidence file."""
    from tests import test_configs

    files = {
        **test_configs.TREE,
        "hf.py": "from transformers import TrainingArguments\nTrainingArguments(output_dir='o')\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    test_configs.traced(root, "configs/a.py", "run-a")
    (root / ".ddp-codemod" / "broken.json").write_text("{")


def test_background_configs_give_the_serial_result(tmp_path: Path, monkeypatch):
    _config_tree(tmp_path)
    serial = api.run(api.Request((".",), cwd=tmp_path, rewrite=True, jobs=1))
    assert any(s.kind.value == "config-py" for s in serial.sites) and serial.errors
    started = []
    real = parallel.Background._start
    monkeypatch.setattr(parallel.Background, "_start", lambda self: started.append(1) or real(self))
    monkeypatch.setattr(parallel, "BACKGROUND_BYTES", 0)
    background = api.run(api.Request((".",), cwd=tmp_path, rewrite=True, jobs=2))
    assert started == ([1] if parallel.start_method() == "fork" else [])
    assert background.sites == serial.sites
    assert background.errors == serial.errors
    assert background.warnings == serial.warnings
    assert [(c.rel, c.new) for c in background.changes] == [(c.rel, c.new) for c in serial.changes]
