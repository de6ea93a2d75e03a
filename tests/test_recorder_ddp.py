"""The recorder under real torchrun, world size 2 on gloo, through `ddp-codemod trace`.

One traced run of the zoo (tests/ddp_runs.py) builds one DDP instance per behaviour, and
each test reads its own instance from that run's evidence; --steps, a killed rank and the
numerics comparison need runs of their own.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch

from codemod.recorder._ddp_codemod_source import lines_sha256, read_source, source_lines
from tests.ddp_runs import (
    PREAMBLE,
    PYTHON,
    Traced,
    clean_env,
    frame_functions,
    git_init,
    instance_at,
    line_of,
    script,
    torchrun,
    trace,
    write_repo,
    zoo_repo,
)

STEPS = 6
ZOO_ENV = {"ZOO_STEPS": str(STEPS)}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Traced, str]:
    repo = zoo_repo(tmp_path_factory.mktemp("zoo"))
    root_commit = git_init(repo)
    env = clean_env(**ZOO_ENV, ZOO_SAVE=str(repo / "params-traced.txt"))
    traced = trace(repo, torchrun("train.py"), env=env)
    assert traced.returncode == 0, traced.proc.stderr[-3000:]
    return repo, traced, root_commit


def _site(zoo: tuple[Path, Traced, str], marker: str, rank: int = 0) -> dict[str, Any]:
    repo, traced, _ = zoo
    line = line_of((repo / "train.py").read_text(), marker)
    return instance_at(traced.evidence[rank], "train.py", line)


def test_one_evidence_file_per_rank_with_the_run_facts(zoo):
    repo, traced, root_commit = zoo
    assert [e["rank"] for e in traced.evidence] == [0, 1]
    assert "ddp-codemod: wrote 2 evidence files to .ddp-codemod/" in traced.proc.stderr
    run_ids = {e["run_id"] for e in traced.evidence}
    assert len(run_ids) == 1 and re.fullmatch(r"[0-9a-f-]{36}", run_ids.pop())
    for ev in traced.evidence:
        assert re.fullmatch(rf"evidence-{re.escape(ev['host'])}-{ev['pid']}-\d+\.json", ev["_file"])
        assert ev["format"] == "ddp-codemod-evidence" and ev["version"] == 1
        assert ev["kind"] == "trace"
        assert ev["repo"] == {"root": str(repo), "git_root_commit": root_commit}
        assert ev["command"][-1] == "train.py" and ev["command"][:3] == [
            PYTHON,
            "-m",
            "torch.distributed.run",
        ]
        assert ev["argv"][0].endswith("train.py")
        assert ev["world_size"] == 2
        assert ev["torch"] == torch.__version__
        assert ev["finished"] is True and ev["steps_limit"] is None
        assert ev["errors"] == []
        read = {f["path"]: f["sha256"] for f in ev["files_read"]}  # config evidence
        assert read["helpers.py"] == hashlib.sha256((repo / "helpers.py").read_bytes()).hexdigest()
        assert set(read) <= {"helpers.py", "train.py"}
        assert ev["files_read_unhashed"] == [] and ev["unrecorded_sources"] == []
        assert len(ev["instances"]) == 9
        for inst in ev["instances"]:
            assert inst["find_unused_parameters"] is True and inst["static_graph"] is False
            assert (inst["rank"], inst["world_size"]) == (ev["rank"], 2)


def test_all_parameters_used(zoo):
    inst = _site(zoo, "plain")
    assert inst["parameters"] == ["a.weight", "a.bias", "b.weight", "b.bias"]
    assert inst["unused"] == {} and inst["unused_iterations"] == []
    assert inst["iterations"] == STEPS
    assert inst["unused_sets_stable"] is True


def test_no_grad_forwards_neither_count_nor_close_iterations(zoo):
    plain = _site(zoo, "plain")  # also run under no_grad between its forward and backward
    assert plain["forwards"] == STEPS and plain["iterations"] == STEPS
    assert plain["unused"] == {}  # a no_grad forward closing the iteration would show all unused
    teacher = _site(zoo, "teacher")  # only ever run under no_grad
    assert (teacher["forwards"], teacher["iterations"]) == (0, 0)


def test_layer_never_called_is_named_every_iteration(zoo):
    inst = _site(zoo, "never")
    assert inst["unused"] == {"unused.weight": STEPS, "unused.bias": STEPS}
    assert inst["unused_iterations"] == [
        [i, ["unused.weight", "unused.bias"]] for i in range(STEPS)
    ]


def test_branch_taken_every_third_step(zoo):
    inst = _site(zoo, "third")
    # step % 3 == 0 uses c, other steps use b: over 6 steps c idles 4 times and b twice
    assert inst["unused"] == {"b.weight": 2, "b.bias": 2, "c.weight": 4, "c.bias": 4}
    assert [i for i, _ in inst["unused_iterations"]] == list(range(STEPS))
    assert inst["unused_iterations"][0] == [0, ["b.weight", "b.bias"]]
    assert inst["unused_iterations"][1] == [1, ["c.weight", "c.bias"]]
    assert inst["unused_sets_stable"] is False


def test_frozen_submodule_is_outside_the_parameter_set(zoo):
    inst = _site(zoo, "frozen")
    assert inst["parameters"] == ["a.weight", "a.bias", "b.weight", "b.bias"]
    assert inst["unused"] == {}


def test_two_sites_in_one_file_have_their_own_call_sites(zoo):
    repo, _, _ = zoo
    text = read_source(str(repo / "train.py"))
    plain, never = _site(zoo, "plain"), _site(zoo, "never")
    assert plain["call_site"]["line"] != never["call_site"]["line"]
    assert (plain["unused"] == {}) and never["unused"]
    start = line_of(text, "never")
    assert never["call_site"] == {
        "path": "train.py",
        "line": start,
        "end_line": start + 3,  # the whole multi-line call
        "qualname": "main",
        "lines_sha256": lines_sha256(source_lines(text), start, start + 3),
    }


def test_helper_wrapping_the_call(zoo):
    repo, traced, _ = zoo
    helper_line = line_of((repo / "helpers.py").read_text(), "in-helper")
    caller_line = line_of((repo / "train.py").read_text(), "helper-caller")
    inst = instance_at(traced.evidence[0], "helpers.py", helper_line)
    assert inst["call_site"]["qualname"] == "build_ddp_model"
    inner, outer = inst["frames"][:2]
    assert (inner["path"], inner["line"], inner["qualname"]) == (
        "helpers.py",
        helper_line,
        "build_ddp_model",
    )
    assert (outer["path"], outer["line"], outer["qualname"]) == ("train.py", caller_line, "main")
    text = read_source(str(repo / "helpers.py"))
    function = inner["function"]
    assert (function["line"], function["end_line"]) == (helper_line - 1, helper_line)
    assert function["lines_sha256"] == lines_sha256(
        source_lines(text), helper_line - 1, helper_line
    )
    assert frame_functions(inst)[-1] == ("train.py", "<module>")


def test_gradient_accumulation_counts_synchronising_iterations_only(zoo):
    inst = _site(zoo, "accum")
    assert (inst["forwards"], inst["no_sync_forwards"], inst["iterations"]) == (
        2 * STEPS,
        STEPS,
        STEPS,
    )
    # first_only gets gradients in the no_sync micro-batch only: unused in the synchronising
    # backward, used within the accumulation window.
    never = {"b.weight": STEPS, "b.bias": STEPS, "never.weight": STEPS, "never.bias": STEPS}
    assert inst["unused"] == {**never, "first_only.weight": STEPS, "first_only.bias": STEPS}
    assert inst["no_sync_unused"] == never


def test_rank_dependent_use_shows_in_one_rank_only(zoo):
    rank0, rank1 = _site(zoo, "ranked", rank=0), _site(zoo, "ranked", rank=1)
    assert rank0["unused"] == {"extra.weight": STEPS, "extra.bias": STEPS}
    assert rank1["unused"] == {}


def test_repo_subclass_reports_the_subclass_call_not_super_init(zoo):
    repo, _, _ = zoo
    inst = _site(zoo, "subclass")
    assert inst["class"] == "__main__.MyDDP"
    super_line = line_of((repo / "train.py").read_text(), "super-init")
    assert all(f["line"] != super_line for f in inst["frames"])
    assert inst["call_site"]["qualname"] == "main"


def test_numerics_unchanged_by_the_recorder(zoo, tmp_path: Path):
    repo, _, _ = zoo
    plain = tmp_path / "params-plain.txt"
    done = subprocess.run(
        torchrun("train.py"),
        cwd=repo,
        env=clean_env(**ZOO_ENV, ZOO_SAVE=str(plain)),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    traced = (repo / "params-traced.txt").read_text().splitlines()
    untraced = plain.read_text().splitlines()
    assert len(traced) == 48  # every parameter of the 9 models, frozen ones included
    assert traced == untraced


# --steps ----------------------------------------------------------------------------------
GAN = """\
def main():
    dist.init_process_group("gloo")
    torch.manual_seed(0)
    gen = DDP(torch.nn.Sequential(linear(), linear()), find_unused_parameters=True)
    disc = DDP(torch.nn.Sequential(linear(), linear(4, 1)), find_unused_parameters=True)
    opt = torch.optim.SGD(list(gen.parameters()) + list(disc.parameters()), lr=0.01)
    for step in range(1000):
        opt.zero_grad()
        gen(batch(step)).sum().backward()  # two synchronising iterations per step for gen
        fake = gen(batch(step, 1))
        fake.sum().backward()
        disc(fake.detach()).sum().backward()  # one for disc
        opt.step()
    print("LOOP FINISHED")


main()
"""


def test_steps_stops_every_rank_cleanly(tmp_path: Path):
    repo = write_repo(tmp_path, {"train.py": script(PREAMBLE + GAN)})
    traced = trace(repo, torchrun("train.py"), "--steps", "3")
    assert traced.returncode == 0, traced.proc.stderr[-3000:]
    assert "LOOP FINISHED" not in traced.proc.stdout
    assert traced.proc.stderr.count("stopping after 3 synchronising iterations") == 2
    assert "Traceback" not in traced.proc.stderr
    assert [e["rank"] for e in traced.evidence] == [0, 1]
    for ev in traced.evidence:
        assert ev["finished"] is True and ev["steps_limit"] == 3
        gen, disc = ev["instances"]
        # gen closes iteration k at its forward k; disc closes its third at its fourth
        # forward (step 3), after gen's 8th forward: the run waits for the slowest instance.
        assert (gen["iterations"], disc["iterations"]) == (7, 3)
        assert (gen["forwards"], disc["forwards"]) == (8, 3)
        assert disc["unused"] == {} and gen["unused"] == {}


# A killed run ---------------------------------------------------------------------------
KILLED = """\
import signal


def main():
    dist.init_process_group("gloo")
    model = DDP(torch.nn.Sequential(linear(), linear()), find_unused_parameters=True)
    for step in range(1000):
        if step == 3 and dist.get_rank() == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        model(batch(step)).sum().backward()


main()
"""


def test_killed_rank_keeps_readable_evidence(tmp_path: Path):
    repo = write_repo(tmp_path, {"train.py": script(PREAMBLE + KILLED)})
    traced = trace(repo, torchrun("train.py"))
    assert traced.returncode != 0
    assert [e["rank"] for e in traced.evidence] == [0, 1]
    killed = traced.evidence[1]
    assert killed["finished"] is False
    # iteration 0 closed at step 1's forward and is written at once; the kill came at step 3
    assert killed["instances"][0]["iterations"] >= 1
    assert traced.evidence[0]["instances"][0]["iterations"] >= 1


# Recorder failures ------------------------------------------------------------------------
UNWRITABLE = """\
import shutil


def main():
    dist.init_process_group("gloo")
    out = os.environ["DDP_CODEMOD_OUT"]
    shutil.rmtree(out)
    open(out, "w").close()  # the evidence folder is now a file: every write fails
    model = DDP(torch.nn.Sequential(linear(), linear()), find_unused_parameters=True)
    for step in range(4):
        model(batch(step)).sum().backward()
    print("TRAINING DONE")


main()
"""


def test_recorder_failure_is_reported_once_and_training_goes_on(tmp_path: Path):
    repo = write_repo(tmp_path, {"train.py": script(PREAMBLE + UNWRITABLE)})
    traced = trace(repo, torchrun("train.py", nproc=1))
    assert traced.returncode == 0, traced.proc.stderr[-3000:]
    assert "TRAINING DONE" in traced.proc.stdout
    errors = [line for line in traced.proc.stderr.splitlines() if "recorder error" in line]
    assert len(errors) == 1, traced.proc.stderr[-3000:]
    assert re.search(r"ddp-codemod: recorder error in writing .*evidence-.*json", errors[0])
