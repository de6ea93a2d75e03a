"""`ddp-codemod probe` end to end: real ranks (gloo on 127.0.0.1), real DDP, real evidence.

Each test probes a tiny model in a repo of its own and then asks scan/apply what the
evidence proves. The examples/ packages are the README's worked example.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from codemod.evidence.load import Repo, load
from tests.ddp_runs import clean_env, codemod, write_repo

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
LOCAL_FILES = shutil.ignore_patterns(".ddp-codemod", "__pycache__")  # from trying the README
TIMEOUT_S = 240  # one probe; a hang fails the test instead of blocking the suite


def probe(repo: Path, *args: str, env: dict[str, str] | None = None):
    return codemod(repo, "probe", *args, env=env)


def only_site(repo: Path) -> dict:
    result = codemod(repo, "scan", ".", "--format", "json")
    assert result.returncode == 0, result.stderr
    (site,) = json.loads(result.stdout)["sites"]
    return site


def evidence_docs(repo: Path) -> list[dict]:
    files = sorted((repo / ".ddp-codemod").glob("evidence-*.json"))
    return sorted((json.loads(f.read_text()) for f in files), key=lambda d: d["rank"])


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    repo = tmp_path_factory.mktemp("probe") / "tiny_detector"
    shutil.copytree(EXAMPLES / "tiny_detector", repo, ignore=LOCAL_FILES)
    site = "detector.py::build_ddp_model"
    return repo, probe(repo, "probe_factory.py:make", "--site", site, "--steps", "4")


def test_all_parameters_used_is_safe_with_equal_parameters_and_timings(detector):
    _, result = detector
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("safe: "), result.stdout
    assert "site: detector.py:58 (build_ddp_model)" in result.stdout
    assert "final parameters and buffers: equal, bit for bit" in result.stdout
    assert "largest difference 0)" in result.stdout
    step_times = next(line for line in lines if "step time" in line)
    for label in ("A (True)", "B (False)", "C (static_graph)"):
        assert label in step_times
    assert any(line.strip().startswith("A/B: ") for line in lines)
    assert "static_graph=True: fits" in result.stdout
    assert "evidence: wrote 2 files to .ddp-codemod/" in result.stdout
    assert "e+0" not in result.stdout  # fixed-point milliseconds


def test_timing_is_three_rounds_by_default_each_reported_as_it_ends(detector):
    _, result = detector
    rounds = [line for line in result.stderr.splitlines() if "timing round" in line]
    assert [line.split(":")[1].split()[-1] for line in rounds] == ["1/3", "2/3", "3/3"]
    assert all(re.search(r"A [\d.]+ ms, B [\d.]+ ms, C [\d.]+ ms per step", r) for r in rounds)


def test_timing_holds_two_model_copies_per_rank_and_reports_peak_memory(detector):
    repo, result = detector
    assert re.search(r"peak memory per rank: A [\d.]+ [KMG]iB, B .+, C .+ \(growth", result.stdout)
    probe_data = evidence_docs(repo)[0]["probe"]
    assert probe_data["model_copies"] == 2  # the live model and its initial state
    assert set(probe_data["memory_peak_bytes"]) == {"A", "B", "C"}
    assert probe_data["memory_measure"] == "rss_growth"
    assert (probe_data["timing_rounds"], probe_data["timing_cut"]) == (3, False)


def test_probe_evidence_parses_and_names_the_site(detector):
    repo, _ = detector
    docs = evidence_docs(repo)
    assert [d["rank"] for d in docs] == [0, 1]
    assert {d["kind"] for d in docs} == {"probe"}
    assert len({d["run_id"] for d in docs}) == 1
    assert docs[0]["command"][:4] == ["ddp-codemod", "probe", "probe_factory.py:make", "--site"]
    (inst,) = docs[0]["instances"]
    assert inst["call_site"]["path"] == "detector.py"
    assert inst["call_site"]["qualname"] == "build_ddp_model"
    assert (inst["iterations"], inst["unused"]) == (4, {})
    probe_data = docs[0]["probe"]
    assert probe_data["params_equal"] is True and probe_data["max_abs_diff"] == 0
    assert probe_data["a_median_ms"] > 0 and probe_data["b_median_ms"] > 0
    assert probe_data["static_graph_ok"] is True
    instances, problems = load([repo / ".ddp-codemod"], Repo(repo, None))
    assert problems == [] and len(instances) == 2
    assert instances[0].process.extra["probe"]["ratio"] == probe_data["ratio"]


def test_apply_then_rewrites_the_probed_site_as_safe(detector):
    repo, _ = detector
    site = only_site(repo)
    assert site["verdict"] == "safe"
    assert site["evidence"][0]["kind"] == "probe"
    assert site["evidence"][0]["probe"]["ratio"] > 0
    measured = "ms per step with True" in site["reason"]
    assert measured or "no measurable step-time difference" in site["reason"]
    assert "static_graph=True fits too" in site["reason"]
    result = codemod(repo, "apply", ".", "--dry-run")
    assert result.returncode == 1, result.stderr
    assert "-        find_unused_parameters=True," in result.stdout
    assert "Would rewrite 1 site in 1 file." in result.stderr


def test_unused_layer_is_unsafe_names_it_and_stays(tmp_path: Path):
    repo = tmp_path / "unused_layer"
    shutil.copytree(EXAMPLES / "unused_layer", repo, ignore=LOCAL_FILES)
    before = (repo / "model.py").read_text()
    # from the folder above: paths resolve from there, evidence goes to the example's root
    args = ("unused_layer/probe_factory.py:make", "--site", "unused_layer/model.py")
    result = probe(tmp_path, *args, "--steps", "4", "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "unsafe"
    assert report["unused"] == {"aux_head.weight": 4, "aux_head.bias": 4}
    assert report["runs"]["A"]["ok"] is True
    assert "Expected to have finished reduction" in report["runs"]["B"]["error"]
    assert report["probe"]["hung"] == []
    assert report["comparison"] is None and "ratio" not in report["probe"]
    assert report["site"] == "model.py:19 (build_ddp_model)"
    assert [Path(p).parent for p in report["evidence"]] == [repo / ".ddp-codemod"] * 2
    site = only_site(repo)
    assert site["verdict"] == "unsafe"
    assert site["unused"] == {"aux_head.bias": 4, "aux_head.weight": 4}
    assert "static_graph=True fits too" in site["reason"]  # the same layer, every step
    result = codemod(repo, "apply", ".")
    assert result.returncode == 0, result.stderr
    assert (repo / "model.py").read_text() == before


BUILD = """\
from torch.nn.parallel import DistributedDataParallel as DDP


def build_ddp_model(model, local_rank):
    return DDP(model, device_ids=[local_rank], find_unused_parameters=True)
"""

EVERY_SECOND_STEP = """\
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body, self.odd = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)

    def forward(self, x, step):
        x = self.body(x)
        return self.odd(x) if step % 2 else x


def make():
    def batch(step, rank):
        return torch.randn(2, 4, generator=torch.Generator().manual_seed(100 * rank + step)), step

    return {"model": Net(), "batch": batch, "loss": lambda model, b: model(*b).sum()}
"""


def test_a_branch_used_every_second_step_is_unsafe(tmp_path: Path):
    repo = write_repo(tmp_path, {"train.py": BUILD, "factory.py": EVERY_SECOND_STEP})
    result = probe(repo, "factory:make", "--site", "train.py::build_ddp_model", "--steps", "4")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("unsafe: find_unused_parameters=True is needed")
    assert "unused parameters (steps without a gradient, of 4): odd.bias (2), odd.weight (2)" in (
        result.stdout
    )
    assert "run B (find_unused_parameters=False) failed on rank" in result.stdout
    assert "changed between steps" in result.stdout
    site = only_site(repo)
    assert (site["verdict"], site["unused"]) == ("unsafe", {"odd.bias": 2, "odd.weight": 2})
    assert "static_graph" not in site["reason"]


READY_TWICE = """\
import torch
from torch.utils.checkpoint import checkpoint


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem, self.block, self.head = (torch.nn.Linear(4, 4) for _ in range(3))

    def forward(self, x):
        return self.head(checkpoint(self.block, self.stem(x), use_reentrant=True))


def make():
    def batch(step, rank):
        return torch.randn(2, 4, generator=torch.Generator().manual_seed(100 * rank + step))

    return {"model": Net(), "batch": batch, "loss": lambda model, x: model(x).sum()}
"""


def test_reentrant_checkpointing_fails_with_true_and_dropping_the_flag_fixes_it(tmp_path: Path):
    repo = write_repo(tmp_path, {"train.py": BUILD, "factory.py": READY_TWICE})
    result = probe(repo, "factory:make", "--site", "train.py:5", "--steps", "4")
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("safe: ") and "dropping the flag fixes the run" in first
    assert "run A (find_unused_parameters=True) failed on rank" in result.stdout
    assert "mark a variable ready only once" in result.stdout
    assert "step time" not in result.stdout  # A cannot run: nothing to compare
    docs = evidence_docs(repo)
    assert [d["instances"][0]["find_unused_parameters"] for d in docs] == [False, False]
    assert docs[0]["probe"]["true_fails"] is True
    assert only_site(repo)["verdict"] == "safe"


HANGS_IN_B = """\
import os
import subprocess
import time

import torch
import torch.distributed as dist


def make():
    model = torch.nn.Linear(4, 4)

    def batch(step, rank):
        return torch.randn(2, 4, generator=torch.Generator().manual_seed(100 * rank + step))

    def loss(ddp, x):
        if not ddp.find_unused_parameters and dist.get_rank() == 1:
            child = subprocess.Popen(["sleep", "300"])
            with open(os.environ["PIDS"], "a") as f:
                f.write(f"{os.getpid()} {child.pid} {os.environ['MASTER_PORT']}\\n")
            time.sleep(300)
        return ddp(x).sum()

    return {"model": model, "batch": batch, "loss": loss}
"""


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie not yet reaped
    except FileNotFoundError:
        return True


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
    return True


def test_a_rank_that_hangs_is_killed_with_everything_it_started(tmp_path: Path):
    repo = write_repo(tmp_path / "repo", {"train.py": BUILD, "factory.py": HANGS_IN_B})
    pids = tmp_path / "pids.txt"
    env = clean_env(PIDS=str(pids))
    args = ("factory:make", "--site", "train.py", "--steps", "3", "--timeout", "20")
    start = time.monotonic()
    result = probe(repo, *args, env=env)
    assert time.monotonic() - start < 120
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("unsafe: find_unused_parameters=False does not run here")
    assert "run B (find_unused_parameters=False) hung: no result after 20 s" in result.stdout
    assert "evidence: none written" in result.stdout
    worker, child, port = (int(x) for x in pids.read_text().split())
    deadline = time.monotonic() + 10
    while not (_gone(worker) and _gone(child)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(worker) and _gone(child)
    assert _port_free(port)
    assert not (repo / ".ddp-codemod").exists()


LOSS_RAISES = """\
import torch


def make():
    def batch(step, rank):
        return torch.randn(2, 4, generator=torch.Generator().manual_seed(100 * rank + step))

    def loss(model, x):
        return model(x).sum() * (1 / 0)  # a bug in the user's loss

    return {"model": torch.nn.Linear(4, 4), "batch": batch, "loss": loss}
"""


def test_run_a_failing_in_user_code_is_one_line_and_exit_2(tmp_path: Path):
    repo = write_repo(tmp_path, {"train.py": BUILD, "factory.py": LOSS_RAISES})
    result = probe(repo, "factory:make", "--site", "train.py", "--steps", "2")
    assert result.returncode == 2
    assert re.fullmatch(
        r"ddp-codemod: error: run A \(find_unused_parameters=True\) failed on rank [01]: "
        r"ZeroDivisionError: division by zero \(at factory.py:9 in loss\)",
        result.stderr.strip().splitlines()[-1],
    ), result.stderr
    assert "run B" not in result.stderr  # nothing to compare with
    assert result.stdout == ""
    assert not (repo / ".ddp-codemod").exists()


# A model built from a config file and an environment variable, batches holding an object
# without __eq__, the newer loss/optimizer signatures, and a timing run that never ends its
# second round: the probe cuts it at --timing-timeout and keeps the verdict.
CUT_MODEL = """\
import torch


class Net(torch.nn.Module):
    def __init__(self, width):
        super().__init__()
        self.body, self.head = torch.nn.Linear(4, width), torch.nn.Linear(width, 2)

    def forward(self, x):
        return self.head(self.body(x))
"""

CUT_FACTORY = """\
import os
import threading

import torch
from model import Net

TIMED_LAST_STEP = 4  # warm-up steps 0-1 and timed steps 2-4: only the timing run reaches it
_seen = []


class Boxes:  # no __eq__, like a detection BoxList
    def __init__(self, t):
        self.bbox = t


def make():
    with open(os.path.join(os.path.dirname(__file__), "configs", "net.yaml")) as f:
        scale = float(f.read().split(":")[1])
    model = Net(int(os.environ["NET_WIDTH"]))

    def batch(step, rank):
        g = torch.Generator().manual_seed(100 * rank + step)
        return torch.randn(2, 4, generator=g) * scale, Boxes(torch.rand(2, 2, generator=g))

    def loss(ddp, b, step):
        if step == TIMED_LAST_STEP:
            _seen.append(step)
            if len(_seen) > 3:  # round 2 of A, B and C: wait for the timing deadline
                threading.Event().wait()
        return ((ddp(b[0]) - b[1].bbox) ** 2).mean()

    def optimizer(params, bare):
        assert isinstance(bare, Net), bare  # the bare model, for parameter groups
        return torch.optim.SGD(params, lr=0.05)

    return {"model": model, "batch": batch, "loss": loss, "optimizer": optimizer}
"""


@pytest.fixture(scope="module")
def cut(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    files = {
        "train.py": BUILD,
        "model.py": CUT_MODEL,
        "factory.py": CUT_FACTORY,
        "configs/net.yaml": "scale: 0.5\n",
    }
    repo = write_repo(tmp_path_factory.mktemp("cut"), files)
    args = ("factory:make", "--site", "train.py", "--steps", "3", "--timing-timeout", "40")
    return repo, probe(repo, *args, env=clean_env(NET_WIDTH="4"))


def test_timing_cut_short_keeps_the_verdict_and_the_rounds_that_finished(cut):
    repo, result = cut
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("safe: "), result.stdout
    assert "timing cut after 1 round of 3 (--timing-timeout 40 s); the verdict stands" in (
        result.stdout
    )
    assert "hung" not in result.stdout
    assert "timing round 1/3: A " in result.stderr and "timing round 2/3" not in result.stderr
    assert "step time, median [p25-p75] of 3 steps" in result.stdout
    probe_data = evidence_docs(repo)[0]["probe"]
    assert (probe_data["timing_cut"], probe_data["timing_rounds"]) == (True, 1)
    assert probe_data["hung"] == [] and probe_data["measurable"] is False


def test_the_factory_protocol_runs_in_every_rank_and_its_environment_is_recorded(cut):
    repo, result = cut
    assert "environment make() read: NET_WIDTH=4" in result.stdout
    docs = evidence_docs(repo)
    assert docs[0]["command"][:3] == ["NET_WIDTH=4", "ddp-codemod", "probe"]
    assert only_site(repo)["evidence"][0]["command"].startswith("NET_WIDTH=4 ddp-codemod probe")


def test_probe_evidence_lists_every_repo_file_its_ranks_read(cut):
    repo, _ = cut
    for doc in evidence_docs(repo):
        read = {f["path"]: f["sha256"] for f in doc["files_read"]}
        assert {"factory.py", "model.py", "configs/net.yaml"} <= set(read), read
        assert not any(p.startswith("codemod/") for p in read)
        digest = hashlib.sha256((repo / "model.py").read_bytes()).hexdigest()
        assert read["model.py"] == digest


def test_an_unused_layer_added_after_a_safe_probe_makes_the_site_stale(cut):
    repo, _ = cut
    assert only_site(repo)["verdict"] == "safe"
    model = repo / "model.py"
    before = model.read_text()
    try:
        model.write_text(
            before.replace(
                "torch.nn.Linear(width, 2)",
                "torch.nn.Linear(width, 2)\n"
                "        self.aux = torch.nn.Linear(width, 2)  # never called",
            )
        )
        site = only_site(repo)
        assert site["verdict"] == "stale", site
        assert "model.py" in site["reason"]
        result = codemod(repo, "apply", ".", "--dry-run")
        assert "Would rewrite 0 sites" in result.stderr
    finally:
        model.write_text(before)
