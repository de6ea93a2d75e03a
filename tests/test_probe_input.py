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
