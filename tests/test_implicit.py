"""Implicit True: framework defaults that turn the flag on without naming it.

Hand-written evidence checks how implicit sites pair (by function, like any framework
site, with the default's True); the torchrun tests drive a real Hugging Face Trainer on
CPU gloo, with a tiny BERT built from a config (no hub) and a plain module.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.ddp_runs import codemod, git_init, require, scan_json, script, torchrun, trace
from tests.evidence_docs import frame, instance, write_run
from tests.sources import invoke, invoke_json, write

HF_MAIN = """\
from transformers import Trainer, TrainingArguments


def main(model, data):
    args = TrainingArguments(
        output_dir="out",
        max_steps=4,
    )
    Trainer(model=model, args=args, train_dataset=data).train()
"""


def _framework_run(repo: Path, fup: bool = True, **kw) -> None:
    """DDP built inside framework code (no repo call site) while `main` ran line 9."""
    inst = instance(None, [frame(repo, "train.py", 9, "main", (4, 9))], fup=fup, **kw)
    write_run(repo, [[inst], [dict(inst)]])


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "train.py").write_text(HF_MAIN)
    return root


def test_framework_built_true_pairs_with_the_implicit_site(repo: Path):
    _framework_run(repo)
    code, report, _ = invoke_json(repo, "apply", ".", "--dry-run")
    (site,) = report["sites"]
    assert (site["kind"], site["value"], site["verdict"]) == ("hf-trainer", "None (auto)", "safe")
    assert code == 1


def test_framework_built_false_does_not_cover_it(repo: Path):
    """Gradient checkpointing made the Trainer pass False: the run proves nothing here."""
    _framework_run(repo, fup=False)
    _, report, _ = invoke_json(repo, "scan", ".")
    (site,) = report["sites"]
    assert site["verdict"] == "unknown"
    assert "its default (None) turns find_unused_parameters on" in site["reason"]


def test_unused_parameter_keeps_it_unsafe_even_when_allowlisted(repo: Path):
    _framework_run(repo, unused={"head.weight": 4})
    code, report, _ = invoke_json(repo, "apply", ".", "--allow", "train.py")
    (site,) = report["sites"]
    assert site["verdict"] == "unsafe"
    assert site["unused"] == {"head.weight": 4}
    assert code == 0
    assert (repo / "train.py").read_text() == HF_MAIN


def test_two_framework_sites_in_one_function_are_ambiguous(repo: Path):
    text = HF_MAIN.replace(
        "    Trainer(", "    TrainingArguments(output_dir='other')\n    Trainer("
    )
    (repo / "train.py").write_text(text)
    inst = instance(None, [frame(repo, "train.py", 10, "main", (4, 10))])
    write_run(repo, [[inst], [dict(inst)]])
    _, report, _ = invoke_json(repo, "scan", ".")
    assert [s["verdict"] for s in report["sites"]] == ["unknown", "unknown"]
    assert all("could have built" in s["reason"] for s in report["sites"])


def test_second_apply_is_a_no_op(repo: Path):
    assert invoke(repo, "apply", ".", "--allow", "train.py").exit_code == 1
    assert "ddp_find_unused_parameters=False,\n    )" in (repo / "train.py").read_text()
    code, report, _ = invoke_json(repo, "apply", ".", "--allow", "train.py")
    assert code == 0
    assert [s["verdict"] for s in report["sites"]] == ["off"]


def test_repo_argument_class_in_another_module_is_found_from_the_caller(tmp_path: Path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "args.py").write_text(
        "from transformers import TrainingArguments\n\n\nclass Args(TrainingArguments):\n    pass\n"
    )
    (tmp_path / "run.py").write_text("from pkg.args import Args\n\nargs = Args('out')\n")
    _, report, _ = invoke_json(tmp_path, "scan", ".")
    assert [(s["path"], s["callee"]) for s in report["sites"]] == [("run.py", "pkg.args.Args")]


@pytest.mark.parametrize(
    "imports, base",
    [
        ("from transformers import TrainingArguments as TA", "TA"),
        ("import transformers as tf", "tf.TrainingArguments"),
        ("from trl import SFTConfig as Cfg", "Cfg"),
    ],
)
def test_argument_class_with_an_aliased_base_and_its_subclass_are_found(
    tmp_path: Path, imports: str, base: str
):
    """Discovery reads bases and `X as Y` imports from bytes: an alias, a module attribute
    and a subclass of the subclass (a second round) are all found."""
    write(tmp_path, "pkg/__init__.py", "")
    write(tmp_path, "pkg/args.py", f"{imports}\n\n\nclass Args({base}):\n    pass\n")
    write(tmp_path, "pkg/more.py", "from pkg.args import Args\n\n\nclass More(Args):\n    pass\n")
    write(tmp_path, "run.py", "from pkg.more import More\n\nargs = More('out')\n")
    _, report, _ = invoke_json(tmp_path, "scan", ".")
    assert [(s["path"], s["callee"]) for s in report["sites"]] == [("run.py", "pkg.more.More")]


def test_repo_subclass_of_a_trl_config_called_in_its_own_file_is_a_site(tmp_path: Path):
    write(
        tmp_path,
        "run.py",
        "from trl import SFTConfig\n"
        "class MyCfg(SFTConfig):\n"
        "    pass\n"
        "args = MyCfg(output_dir='o')\n",
    )
    _, report, _ = invoke_json(tmp_path, "scan", ".")
    assert [(s["path"], s["line"]) for s in report["sites"]] == [("run.py", 4)]


def test_files_without_implicit_spellings_are_not_parsed(tmp_path: Path, monkeypatch):
    from codemod import api
    from codemod.discover.implicit import may_hold_implicit

    assert not may_hold_implicit(b"import torch\nmodel = DDP(model)\n")
    assert not may_hold_implicit(b"from transformers import AutoModel\n")
    assert not may_hold_implicit(b"from transformers import TrainingArguments\n")  # no call
    assert may_hold_implicit(b"from transformers import TrainingArguments\nTrainingArguments()")
    assert may_hold_implicit(b"from trl import SFTConfig\nSFTConfig(output_dir='o')\n")
    assert may_hold_implicit(b"from trl import SFTConfig as C\nC(output_dir='o')\n")
    assert may_hold_implicit(b'import lightning as L\nL.Trainer(strategy="ddp")\n')
    # another Config class, and trl's own config statements, call nothing of the family
    assert not may_hold_implicit(b"from trl import SFTTrainer\ncfg = LoraConfig(r=8)\n")
    own = b"from trl.trainer.base_config import _BaseConfig\nclass SFTConfig(_BaseConfig):\n"
    assert not may_hold_implicit(own)
    assert may_hold_implicit(own + b"def default():\n    return SFTConfig(output_dir='o')\n")
    (tmp_path / "a.py").write_text("from transformers import AutoModel\n")
    seen: list[str] = []
    real = api._process
    monkeypatch.setattr(
        api,
        "_process",
        lambda req, c, *a: seen.extend(t.source.rel for t, _ in c) or real(req, c, *a),
    )
    api.run(api.Request(paths=(".",), cwd=tmp_path))
    assert seen == []


# Real runs -------------------------------------------------------------------------------

DATA = """\
import torch
from torch.utils.data import Dataset


class Data(Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, i):
        gen = torch.Generator().manual_seed(i)
        return {"input_ids": torch.randint(0, 50, (8,), generator=gen), "labels": i % 2}
"""

BERT = """\
from data import Data
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments


def main():
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=16,
    )
    model = BertForSequenceClassification(config)
    args = TrainingArguments(
        output_dir="out",
        max_steps=4,
        per_device_train_batch_size=2,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
    )
    Trainer(model=model, args=args, train_dataset=Data()).train()


main()
"""

PLAIN = """\
import torch
from data import Data
from transformers import Trainer, TrainingArguments


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(50, 4)
        self.body = torch.nn.Linear(4, 2)
        self.head = torch.nn.Linear(2, 2)  # never called

    def forward(self, input_ids, labels=None):
        logits = self.body(self.embed(input_ids).mean(dim=1))
        return {"loss": torch.nn.functional.cross_entropy(logits, labels), "logits": logits}


def main():
    args = TrainingArguments(output_dir="out", max_steps=4, per_device_train_batch_size=2,
                             use_cpu=True, report_to="none", save_strategy="no",
                             disable_tqdm=True)
    Trainer(model=Net(), args=args, train_dataset=Data()).train()


main()
"""


def _hf_repo(root: Path, train: str) -> Path:
    require("transformers")
    (root / "data.py").write_text(DATA)
    (root / "train.py").write_text(script(train))
    (root / ".gitignore").write_text("out/\n.ddp-codemod/\n")
    git_init(root)
    return root


def _trace(repo: Path) -> None:
    traced = trace(repo, torchrun("train.py"))
    assert traced.returncode == 0, traced.proc.stderr[-3000:]
    assert [e["rank"] for e in traced.evidence] == [0, 1]
    for ev in traced.evidence:
        (inst,) = ev["instances"]
        assert inst["call_site"] is None  # accelerate's prepare built it, for the Trainer
        assert inst["find_unused_parameters"] is True  # the default, unsaid


def test_trainer_on_a_pretrained_model_is_safe_and_the_diff_applies(tmp_path: Path):
    repo = _hf_repo(tmp_path, BERT)
    _trace(repo)
    (site,) = scan_json(repo)["sites"]
    assert (site["kind"], site["value"], site["qualname"]) == ("hf-trainer", "None (auto)", "main")
    assert site["verdict"] == "safe", site
    dry = codemod(repo, "apply", ".", "--dry-run")
    assert dry.returncode == 1, dry.stderr
    assert "+        ddp_find_unused_parameters=False,\n" in dry.stdout
    subprocess.run(["git", "apply", "-"], cwd=repo, input=dry.stdout, text=True, check=True)
    assert (
        "        disable_tqdm=True,\n        ddp_find_unused_parameters=False,\n    )"
        in (repo / "train.py").read_text()
    )


def test_trainer_on_a_plain_module_with_an_idle_head_is_unsafe(tmp_path: Path):
    repo = _hf_repo(tmp_path, PLAIN)
    _trace(repo)
    (site,) = scan_json(repo)["sites"]
    assert site["verdict"] == "unsafe", site
    assert site["unused"] == {"head.bias": 4, "head.weight": 4}
    assert "head.bias (4), head.weight (4)" in site["reason"]


def test_token_check_proves_where_the_keyword_went():
    from codemod.edit.verify import Change, check
    from codemod.model import Fix, Span

    old, new = "f(a)\ng(b)\n", "f(a, k=False)\ng(b)\n"
    added = (",", "k", "=", "False")
    f_call, g_call = Span(1, 1, 1, 5), Span(2, 1, 2, 5)
    assert check(old, new, [(Change(Fix.ADD_FALSE, f_call, f_call, added), "")]) is None
    wrong = check(old, new, [(Change(Fix.ADD_FALSE, g_call, g_call, added), "")])
    assert wrong == "the rewrite changed more tokens than the setting itself"
    commented = "f(a, k=False)  # new\ng(b)\n"
    assert check(old, commented, [(Change(Fix.ADD_FALSE, f_call, f_call, added), "")]) == (
        "the rewrite added a comment"
    )


# A traced run settles the Lightning version a repo does not pin ---------------------------

PL_MAIN = """\
import pytorch_lightning as pl


def main(model, data):
    trainer = pl.Trainer(strategy="ddp", max_steps=4)
    trainer.fit(model, data)
"""


def _lightning_run(tmp_path: Path, version: str | None, fup: bool = True, **kw) -> Path:
    """DDP built inside Lightning while `main` ran line 6, under `version` (None: unsaid)."""
    repo = tmp_path / "pl"
    repo.mkdir()
    (repo / "train.py").write_text(PL_MAIN)
    inst = instance(None, [frame(repo, "train.py", 6, "main", (4, 6))], fup=fup, **kw)
    extra = {"frameworks": {"pytorch_lightning": version, "torch": "2.1.0"}} if version else {}
    write_run(repo, [[inst], [dict(inst)]], extra=extra)
    return repo


def test_unpinned_lightning_site_is_settled_by_a_run_under_lightning_1(tmp_path: Path):
    repo = _lightning_run(tmp_path, "1.9.5")
    code, report, _ = invoke_json(repo, "apply", ".", "--dry-run")
    (site,) = report["sites"]
    assert (site["kind"], site["verdict"]) == ("lightning", "safe"), site
    assert "pytorch_lightning 1.9.5" in site["reason"]
    assert code == 1
    assert invoke(repo, "apply", ".").exit_code == 1
    assert 'strategy="ddp_find_unused_parameters_false"' in (repo / "train.py").read_text()
    code, report, _ = invoke_json(repo, "apply", ".")
    assert code == 0


def test_unpinned_lightning_site_under_lightning_1_with_an_idle_parameter_is_unsafe(
    tmp_path: Path,
):
    repo = _lightning_run(tmp_path, "1.8.6", unused={"head.weight": 4})
    _, report, _ = invoke_json(repo, "scan", ".")
    (site,) = report["sites"]
    assert site["verdict"] == "unsafe"
    assert "pytorch_lightning 1.8.6" in site["reason"]


def test_unpinned_lightning_site_run_under_lightning_2_stays_dynamic(tmp_path: Path):
    repo = _lightning_run(tmp_path, "2.1.0", fup=False)
    _, report, _ = invoke_json(repo, "scan", ".")
    (site,) = report["sites"]
    assert site["verdict"] == "dynamic"
    assert "pytorch_lightning 2.1.0" in site["reason"]
    assert "depends on the installed Lightning" in site["reason"]


def test_unpinned_lightning_site_run_without_versions_stays_dynamic(tmp_path: Path):
    repo = _lightning_run(tmp_path, None)
    _, report, _ = invoke_json(repo, "scan", ".")
    (site,) = report["sites"]
    assert site["verdict"] == "dynamic"
    assert site["reason"].endswith("it depends on the installed Lightning; report only")


def test_frameworks_field_is_validated(tmp_path: Path):
    from codemod.evidence.load import EvidenceError, Repo, parse

    repo = tmp_path / "r"
    repo.mkdir()
    (repo / "train.py").write_text(PL_MAIN)
    good = {"frameworks": {"transformers": "5.24.0"}}
    (path,) = write_run(repo, [[instance()]], extra=good)
    (inst,) = parse(path, path.read_bytes(), Repo(repo, None), {})
    assert inst.process.frameworks == {"transformers": "5.24.0"}
    for bad in ({"transformers": 5}, ["transformers"], {"x" * 300: "1"}, {"t": "1" * 300}):
        (path,) = write_run(repo, [[instance()]], extra={"frameworks": bad})
        with pytest.raises(EvidenceError, match="frameworks"):
            parse(path, path.read_bytes(), Repo(repo, None), {})


def test_hf_reason_names_the_transformers_version_the_run_used(repo: Path):
    inst = instance(None, [frame(repo, "train.py", 9, "main", (4, 9))])
    write_run(repo, [[inst], [dict(inst)]], extra={"frameworks": {"transformers": "4.46.3"}})
    _, report, _ = invoke_json(repo, "scan", ".")
    (site,) = report["sites"]
    assert site["verdict"] == "safe"
    assert "transformers 4.46.3" in site["reason"]


# Argument files an HfArgumentParser run chose -------------------------------------------

ARGS_MAIN = """\
import sys

from transformers import HfArgumentParser, Trainer, TrainingArguments


def main(model, data):
    (args,) = HfArgumentParser(TrainingArguments).parse_yaml_file(sys.argv[1])
    Trainer(model=model, args=args, train_dataset=data).train()
"""
ARGS_YAML = "# run config\noutput_dir: out\nper_device_train_batch_size: 2\nlearning_rate: 1.0e-4\n"
ARGS_JSON = '{\n  "output_dir": "out",\n  "per_device_train_batch_size": 2\n}\n'
HF_FRAMEWORKS = {"frameworks": {"transformers": "5.24.0", "accelerate": "1.10.0"}}


def _args_repo(tmp_path: Path, name: str, text: str, frameworks=HF_FRAMEWORKS, **kw) -> Path:
    """A run that named `name` on its command line; accelerate built its DDP with True."""
    repo = tmp_path / "hfargs"
    repo.mkdir()
    (repo / "train.py").write_text(ARGS_MAIN)
    (repo / name).write_bytes(text.encode())
    inst = instance(None, [frame(repo, "train.py", 8, "main", (6, 8))], **kw)
    command = ("torchrun", "--nproc_per_node=2", "train.py", name)
    write_run(
        repo,
        [[inst], [dict(inst)]],
        command=command,
        argv=("train.py", name),
        files_read=("train.py", name),
        extra=frameworks,
    )
    return repo


def _args_site(report: dict, name: str) -> dict:
    (site,) = [s for s in report["sites"] if s["path"] == name]
    return site


@pytest.mark.parametrize(
    ("name", "text", "added"),
    [
        ("args.yaml", ARGS_YAML, ARGS_YAML + "ddp_find_unused_parameters: false\n"),
        ("args.yml", "a: 1\r\nper_device_train_batch_size: 2", None),
        (
            "args.json",
            ARGS_JSON,
            '{\n  "output_dir": "out",\n  "per_device_train_batch_size": 2,\n'
            '  "ddp_find_unused_parameters": false\n}\n',
        ),
    ],
)
def test_chosen_argument_file_gets_the_key_added(tmp_path: Path, name, text, added):
    repo = _args_repo(tmp_path, name, text)
    code, report, _ = invoke_json(repo, "apply", ".")
    site = _args_site(report, name)
    assert (site["kind"], site["setting"], site["value"], site["fix"]) == (
        "json" if name.endswith(".json") else "yaml",
        "ddp_find_unused_parameters",
        "None (auto)",
        "add-false",
    )
    assert site["verdict"] == "safe", site
    assert code == 1
    expected = (
        added or "a: 1\r\nper_device_train_batch_size: 2\r\nddp_find_unused_parameters: false"
    )
    assert (repo / name).read_bytes() == expected.encode()
    code, report, _ = invoke_json(repo, "apply", ".")
    assert code == 0
    assert _args_site(report, name)["verdict"] == "off"


@pytest.mark.parametrize(
    "text",
    [
        "{output_dir: out, per_device_train_batch_size: 2}\n",  # flow style
        "---\noutput_dir: out\nper_device_train_batch_size: 2\n",  # a document marker
        "output_dir: out\r\nper_device_train_batch_size: 2\n",  # mixed line endings
    ],
)
def test_argument_file_whose_style_cannot_be_kept_is_reported(tmp_path: Path, text: str):
    repo = _args_repo(tmp_path, "args.yaml", text)
    code, report, _ = invoke_json(repo, "apply", ".")
    assert _args_site(report, "args.yaml")["verdict"] == "dynamic"
    assert code == 0
    assert (repo / "args.yaml").read_bytes() == text.encode()


def test_argument_file_without_an_hf_run_is_no_site(tmp_path: Path):
    """Lightning loaded, or no transformers: the file may be anybody's; no site, no noise."""
    for frameworks in ({}, {"frameworks": {"transformers": "5.24.0", "lightning": "2.6.6"}}):
        repo = _args_repo(tmp_path, "args.yaml", ARGS_YAML, frameworks)
        _, report, _ = invoke_json(repo, "scan", ".")
        assert report["sites"] == []
        import shutil

        shutil.rmtree(repo)


def test_argument_file_nobody_named_is_no_site(tmp_path: Path):
    repo = _args_repo(tmp_path, "args.yaml", ARGS_YAML)
    (repo / "other.yaml").write_text(ARGS_YAML)
    _, report, _ = invoke_json(repo, "scan", ".")
    assert "other.yaml" not in [s["path"] for s in report["sites"]]


def test_argument_file_with_an_idle_parameter_is_unsafe(tmp_path: Path):
    repo = _args_repo(tmp_path, "args.yaml", ARGS_YAML, unused={"head.weight": 4})
    _, report, _ = invoke_json(repo, "apply", ".")
    assert _args_site(report, "args.yaml")["verdict"] == "unsafe"
    assert (repo / "args.yaml").read_text() == ARGS_YAML


def test_calls_any_agrees_with_searching_each_name():
    """calls_any searches each last-four-bytes tail once; it must say what one `in` per
    name says, also for names shorter than four bytes and hits at the start of the file."""
    import itertools

    from codemod.discover.implicit import calls_any

    names = [b"SFTConfig", b"MyConfig", b"Args", b"X"]
    pieces = [b"SFTConfig(", b"MySFTConfig(", b"Config(", b"yConfig(", b"Args (", b"(X(", b"fig"]
    for a, b in itertools.product(pieces, repeat=2):
        for data in (a + b, a + b" = " + b, b"\n" + a):
            assert calls_any(data, names) == any(n + b"(" in data for n in names), data


def test_every_hf_call_is_a_mention():
    """The read loop skips calls_hf where mentions_hf is False: that must never lose one."""
    from codemod.discover.implicit import calls_hf, mentions_hf

    samples = [
        b"TrainingArguments(",
        b"x = TrainingArguments(output_dir='o')\n",
        b"from trl import SFTConfig\nSFTConfig(output_dir='o')\n",
        b"import trl\nSFTConfig()\n",
        b"from trl import SFTConfig as C\nC(output_dir='o')\n",
        b"from transformers import TrainingArguments as TA\nTA()\n",
        b"from x import Config as C\nC()\n",
        b"Config(\n",
        b"lightning as L\n",
        b"",
    ]
    for data in samples:
        assert not calls_hf(data) or mentions_hf(data), data
