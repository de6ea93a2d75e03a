"""Copies of a recorded DDP model (EMA, best-model snapshots, checkpoints) work as without the
recorder: deepcopy, pickle, torch.save / torch.load, a state_dict round trip and torch.compile
of a deep copy, under real torchrun (world size 2, gloo), traced and plain, same output.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.ddp_runs import PREAMBLE, TIMEOUT_S, clean_env, script, torchrun, trace, write_repo

COPIES = """\
import copy
import io
import pickle


RESULTS = []


def digest(t):
    return round(float(t.detach().double().sum()), 6)


def print(*words):  # one results file per rank: ranks share stdout
    RESULTS.append(" ".join(str(w) for w in words))


def main():
    dist.init_process_group("gloo")
    torch.manual_seed(0)
    model = DDP(torch.nn.Sequential(linear(), linear()), find_unused_parameters=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    step = 0

    def train(m):
        nonlocal step
        opt.zero_grad()
        m(batch(step)).sum().backward()
        opt.step()
        step += 1

    for _ in range(3):
        train(model)
    x = batch(99)
    ema = copy.deepcopy(model)  # EMA / best-model copy
    with torch.no_grad():
        print("deepcopy", digest(ema(x)))
    loaded = pickle.loads(pickle.dumps(model))
    with torch.no_grad():
        print("pickle", digest(loaded(x)))
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=False)
    with torch.no_grad():
        print("torch.save", digest(saved(x)))
    state = io.BytesIO()
    torch.save(model.state_dict(), state)
    state.seek(0)
    twin = DDP(torch.nn.Sequential(linear(), linear()), find_unused_parameters=True)
    twin.load_state_dict(torch.load(state))
    with torch.no_grad():
        print("state_dict", digest(twin(x)))
    compiled = torch.compile(copy.deepcopy(model))
    out = compiled(x)
    out.sum().backward()
    print("compile", digest(out))
    for _ in range(2):  # the original goes on training and is still recorded
        train(model)
    print("trained", digest(sum(p.sum() for p in model.parameters())))
    with open(f"{os.environ['RESULTS']}-{dist.get_rank()}.txt", "w") as f:
        f.write("\\n".join(RESULTS) + "\\n")


main()
"""


def test_copies_of_a_recorded_model_behave_as_without_the_recorder(tmp_path: Path):
    repo = write_repo(tmp_path, {"train.py": script(PREAMBLE + COPIES)})
    traced = trace(repo, torchrun("train.py"), env=clean_env(RESULTS=str(tmp_path / "traced")))
    assert traced.returncode == 0, traced.proc.stderr[-4000:]
    plain = subprocess.run(
        torchrun("train.py"),
        cwd=repo,
        env=clean_env(RESULTS=str(tmp_path / "plain")),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert plain.returncode == 0, plain.stderr[-4000:]
    for rank in (0, 1):
        lines = (tmp_path / f"traced-{rank}.txt").read_text().splitlines()
        assert lines == (tmp_path / f"plain-{rank}.txt").read_text().splitlines()
        kinds = [line.split()[0] for line in lines]
        assert kinds == ["deepcopy", "pickle", "torch.save", "state_dict", "compile", "trained"]
    assert "recorder error" not in traced.proc.stderr
    assert [e["rank"] for e in traced.evidence] == [0, 1]
    for ev in traced.evidence:
        assert ev["errors"] == []
        # the original and the freshly built twin are recorded, copies are not
        (original, twin) = ev["instances"]
        assert original["iterations"] == 5 and original["unused"] == {}
        assert twin["forwards"] == 0
