"""Bad input to `ddp-codemod probe` is one line on stderr and exit 2, before any rank starts.

These run in this process (CliRunner): the factory is imported and checked here, so nothing
is spawned; each case uses its own module name because imports are cached.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ddp_runs import write_repo
from tests.sources import invoke as invoke_cli

BUILD = """\
from torch.nn.parallel import DistributedDataParallel as DDP


def build_ddp_model(model, local_rank):
    return DDP(model, device_ids=[local_rank], find_unused_parameters=True)


def build_other(model):
    return DDP(model, find_unused_parameters=True)
"""

GOOD_PARTS = """\
import torch


def batch(step, rank):
    return torch.randn(2, 4, generator=torch.Generator().manual_seed(100 * rank + step))


def loss(model, x):
    return model(x).sum()
"""

CASES = {
    "not-a-target": (
        "bad_target",
        "",
        "bad_target",
        "'bad_target' is not MODULE:FACTORY (e.g. tools/probe.py:make)",
    ),
    "no-module": (
        "f_missing:make",
        "",
        "",
        "cannot import f_missing: ModuleNotFoundError: No module named 'f_missing'",
    ),
    "no-file": ("nowhere/f.py:make", "", "", "cannot import nowhere/f.py: no such file"),
    "import-fails": (
        "f_import:make",
        "import not_a_module_anywhere\n",
        "f_import",
        "cannot import f_import: ModuleNotFoundError: No module named 'not_a_module_anywhere'",
    ),
    "no-attribute": ("f_attr:make", "x = 1\n", "f_attr", "f_attr has no attribute 'make'"),
    "not-callable": ("f_call:make", "make = 3\n", "f_call", "f_call:make is not callable"),
    "raises": (
        "f_raises:make",
        "def make():\n    raise ValueError('no config file')\n",
        "f_raises",
        "f_raises:make raised ValueError: no config file",
    ),
    "wrong-shape": (
        "f_shape:make",
        GOOD_PARTS + "def make():\n    return {'model': torch.nn.Linear(4, 4), 'batch': batch}\n",
        "f_shape",
        "f_shape:make returned dict without loss: return a dict (or object) with model, batch, "
        "loss and optionally optimizer",
    ),
    "not-a-module": (
        "f_model:make",
        GOOD_PARTS + "def make():\n    return dict(model=lambda x: x, batch=batch, loss=loss)\n",
        "f_model",
        "f_model:make: model is a function, not a torch.nn.Module",
    ),
    "frozen": (
        "f_frozen:make",
        GOOD_PARTS
        + "def make():\n"
        + "    model = torch.nn.Linear(4, 4).requires_grad_(False)\n"
        + "    return dict(model=model, batch=batch, loss=loss)\n",
        "f_frozen",
        "f_frozen:make: the model has no trainable parameters",
    ),
    "random-batches": (
        "f_random:make",
        GOOD_PARTS
        + "def make():\n"
        + "    return dict(model=torch.nn.Linear(4, 4), batch=lambda s, r: torch.randn(2, 4), "
        + "loss=loss)\n",
        "f_random",
        "f_random:make: batch(0, 0) gave different data on two calls; derive it from (step, rank) "
        "only, e.g. torch.Generator().manual_seed(...)",
    ),
}


def invoke(repo: Path, *args: str):
    return invoke_cli(repo, "probe", *args)


@pytest.mark.parametrize(("target", "code", "module", "message"), CASES.values(), ids=CASES)
def test_a_bad_factory_is_one_line_and_exit_2(tmp_path, target, code, module, message):
    files = {f"{module}.py": code} if module else {}
    repo = write_repo(tmp_path, {"train.py": BUILD, **files})
    result = invoke(repo, target, "--site", "train.py::build_ddp_model")
    assert result.exit_code == 2
    assert result.stderr == f"ddp-codemod: error: {message}\n"
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("site", "message"),
    [
        ("train.py", "--site train.py matches 2 sites (lines 5, 9); name one with train.py:LINE"),
        ("train.py::nothing", "--site train.py::nothing matches no find_unused_parameters site"),
        ("train.py:7", "--site train.py:7 matches no find_unused_parameters site"),
        ("missing.py", "--site missing.py: no such file: missing.py"),
        ("*.py", "--site *.py: name one file, not a pattern"),
    ],
)
def test_a_site_that_is_not_exactly_one_is_one_line_and_exit_2(tmp_path, site, message):
    repo = write_repo(tmp_path, {"train.py": BUILD})
    result = invoke(repo, "never_imported:make", "--site", site)
    assert result.exit_code == 2
    assert result.stderr == f"ddp-codemod: error: {message}\n"


def test_probe_imports_no_torch_for_scan_and_apply():
    import subprocess
    import sys

    code = "import sys, codemod.cli.main; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def _setup(make):
    """What build() makes of `make` (in this process, no ranks)."""
    from codemod.probe import factory

    return factory.build(factory.Factory("t:make", make, ()))


def test_loss_gets_the_step_and_optimizer_the_model_when_they_ask():
    import torch

    seen = []
    model = torch.nn.Linear(4, 4)

    def make():
        def loss(ddp, batch, step):
            seen.append(("loss", step))
            return ddp(batch).sum()

        def optimizer(params, bare):
            seen.append(("optimizer", bare is model))
            return torch.optim.SGD(params, lr=0.1)

        return {
            "model": model,
            "batch": lambda s, r: torch.ones(1, 4),
            "loss": loss,
            "optimizer": optimizer,
        }

    setup = _setup(make)
    setup.optimizer(model.parameters(), model)
    setup.loss(model, torch.ones(1, 4), 7)
    assert seen == [("optimizer", True), ("loss", 7)]


def test_two_argument_loss_and_one_argument_optimizer_still_work():
    import torch

    def make():
        return {
            "model": torch.nn.Linear(4, 4),
            "batch": lambda s, r: torch.ones(1, 4),
            "loss": lambda m, b: m(b).sum(),
            "optimizer": lambda params: torch.optim.SGD(params, lr=0.1),
        }

    setup = _setup(make)
    opt = setup.optimizer(setup.model.parameters(), setup.model)
    assert isinstance(opt, torch.optim.SGD)
    assert setup.loss(setup.model, torch.ones(1, 4), 3).ndim == 0


def test_a_loss_with_the_wrong_signature_is_named():
    import torch

    from codemod.probe import factory

    def make():
        return {"model": torch.nn.Linear(4, 4), "batch": lambda s, r: 0, "loss": lambda m: m}

    with pytest.raises(factory.FactoryError, match="loss must take"):
        _setup(make)


class BoxList:  # like maskrcnn-benchmark's: tensors in attributes, no __eq__
    def __init__(self, boxes, size):
        self.bbox, self.size, self.extra_fields = boxes, size, {"labels": boxes[:, 0].long()}


def test_batch_digest_walks_lists_dicts_dataclasses_and_plain_objects():
    import dataclasses

    import torch

    from codemod.probe.factory import digest

    @dataclasses.dataclass
    class Targets:
        boxes: list
        meta: dict

    def batch(seed):
        t = torch.Generator().manual_seed(seed)
        boxes = BoxList(torch.rand(3, 4, generator=t), (32, 32))
        return torch.randn(2, 3, generator=t), Targets([boxes], {"ids": (1, 2), "name": "x"})

    assert digest(batch(1)) == digest(batch(1))  # BoxList has no __eq__: compared by content
    assert digest(batch(1)) != digest(batch(2))
    other = batch(1)
    other[1].boxes[0].extra_fields["labels"][0] += 1  # deep inside: still seen
    assert digest(other) != digest(batch(1))
    assert digest(torch.zeros(2)) != digest(torch.zeros(2, dtype=torch.float64))


def test_a_batch_holding_something_opaque_is_one_line_naming_its_type(tmp_path):
    code = (
        "import threading\n\nimport torch\n\n\n"
        "def make():\n"
        "    lock = threading.Lock()\n"
        "    return dict(model=torch.nn.Linear(4, 4), batch=lambda s, r: {'x': [lock]},\n"
        "                loss=lambda m, b: m(torch.ones(1, 4)).sum())\n"
    )
    repo = write_repo(tmp_path, {"train.py": BUILD, "f_opaque.py": code})
    result = invoke(repo, "f_opaque:make", "--site", "train.py::build_ddp_model")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "ddp-codemod: error: f_opaque:make: batch(0, 0) cannot be compared: "
        "batch['x'][0] is a _thread.lock; "
    ), result.stderr
    assert result.stderr.count("\n") == 1


def test_environment_variables_make_reads_are_recorded_and_secrets_redacted(monkeypatch):
    import os

    import torch

    monkeypatch.setenv("PROBE_DEPTH", "3")
    monkeypatch.setenv("PROBE_API_TOKEN", "hunter2")
    monkeypatch.setenv("PROBE_NOT_READ", "1")
    monkeypatch.delenv("PROBE_ABSENT", raising=False)
    real = os.environ

    def make():
        depth = int(os.environ["PROBE_DEPTH"])
        os.getenv("PROBE_API_TOKEN")
        assert "PROBE_ABSENT" not in os.environ
        os.environ["PROBE_SET_HERE"] = "1"
        os.environ.get("PROBE_SET_HERE")
        os.environ.copy()  # a bulk read chooses nothing
        os.environ.get("RANK")  # the probe sets it in every rank
        return {"model": torch.nn.Linear(depth, 4), "batch": lambda s, r: 0, "loss": lambda m, b: m}

    setup = _setup(make)
    assert os.environ is real
    assert setup.environ == {"PROBE_DEPTH": "3", "PROBE_API_TOKEN": "<redacted>"}
    os.environ.pop("PROBE_SET_HERE", None)


def test_the_command_line_starts_with_the_variables_make_read():
    from codemod.probe.runner import Request

    req = Request("f.py:make", Path("."), site="m.py", environ=(("DEPTH", "3"), ("MODE", "a b")))
    assert req.command()[:4] == ["DEPTH=3", "MODE=a b", "ddp-codemod", "probe"]


def test_device_cuda_without_cuda_is_one_line_and_exit_2(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    repo = write_repo(tmp_path, {"train.py": BUILD})
    result = invoke(repo, "never_imported:make", "--site", "train.py:5", "--device", "cuda")
    assert result.exit_code == 2
    assert result.stderr == (
        f"ddp-codemod: error: --device cuda: no CUDA device is visible to torch "
        f"{torch.__version__}\n"
    )


def test_device_cuda_needs_one_gpu_per_rank(tmp_path, monkeypatch):
    import torch
    import torch.distributed as dist

    from codemod.probe.runner import check_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(dist, "is_nccl_available", lambda: True)
    repo = write_repo(tmp_path, {"train.py": BUILD})
    args = ("never_imported:make", "--site", "train.py:5", "--device", "cuda")
    result = invoke(repo, *args)  # --world-size 2 by default
    assert result.exit_code == 2
    assert result.stderr == (
        "ddp-codemod: error: --device cuda: --world-size 2 needs 2 GPUs (one rank per GPU), "
        "1 visible\n"
    )
    check_device("cuda", 1)  # one GPU, one rank: accepted (timing and memory)
    monkeypatch.setattr(dist, "is_nccl_available", lambda: False)
    result = invoke(repo, *args, "--world-size", "1")
    assert (result.exit_code, result.stderr.count("\n")) == (2, 1)
    assert "has no NCCL" in result.stderr


@pytest.mark.parametrize(
    ("option", "value"), [("--device", "tpu"), ("--timing", "slow"), ("--timing-timeout", "0")]
)
def test_bad_timing_and_device_options_are_usage_errors(tmp_path, option, value):
    repo = write_repo(tmp_path, {"train.py": BUILD})
    result = invoke(repo, "never_imported:make", option, value)
    assert result.exit_code == 2
    assert option in result.stderr


def test_device_cuda_moves_every_tensor_of_a_batch(monkeypatch):
    import torch

    from codemod.probe.factory import to_device

    moved = []
    monkeypatch.setattr(torch.Tensor, "to", lambda self, *a, **k: moved.append(a[0]) or self)
    boxes = BoxList(torch.rand(2, 4), (8, 8))
    batch = (torch.zeros(1), {"t": [boxes]})
    out = to_device(batch, torch.device("meta"))
    assert len(moved) == 3 and out[1]["t"][0] is not boxes  # BoxList copied, tensors moved
    assert to_device(batch, torch.device("cpu")) is batch


PRINTING = """\
import logging
import sys

import torch


def make():
    print("hello from make")
    handler = logging.StreamHandler(sys.stdout)  # mmengine's logger does this
    logging.getLogger("factory-test").addHandler(handler)
    logging.getLogger("factory-test").warning("logged from make")
    model = torch.nn.Linear(2, 1)
    return {"model": model, "batch": lambda step, rank: torch.ones(1, 2), "loss": lambda m, b: m(b)}
"""


def test_what_the_factory_prints_here_goes_to_stderr(tmp_path, capfd):
    """probe calls make() in its own process first: its prints and the logging handlers it
    creates must not land on stdout, where --format json puts the report."""
    import logging

    from codemod.probe.runner import Request, _validate

    (tmp_path / "fac.py").write_text(PRINTING)
    try:
        _validate(Request("fac.py:make", tmp_path))
        logging.getLogger("factory-test").warning("logged later")
    finally:
        logging.getLogger("factory-test").handlers.clear()
    out, err = capfd.readouterr()
    assert out == ""
    assert "hello from make" in err and "logged from make" in err and "logged later" in err
