"""The repo's own Lightning pins decide whether Lightning 1.x defaults are sites."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from codemod.discover.pins import Lightning, classify, lightning_pin, pins_in


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("==1.9.5", Lightning.V1),
        (">=1.5,<2.0", Lightning.V1),
        ("<2", Lightning.V1),
        ("<=1.9.5", Lightning.V1),
        ("~=1.9.0", Lightning.V1),
        ("^1.8", Lightning.V1),  # poetry
        ("=1.8.6", Lightning.V1),  # conda
        (">=2.1", Lightning.V2),
        ("==2.0.0", Lightning.V2),
        ("<2.1", Lightning.UNPINNED),  # 2.0 is allowed
        (">=1.5", Lightning.UNPINNED),
        ("", Lightning.UNPINNED),
    ],
)
def test_specifiers(spec: str, expected: Lightning) -> None:
    assert classify(spec) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pytorch-lightning==1.9.5  # last 1.x\n", [Lightning.V1]),
        ("lightning[extra]~=1.9.0\n", [Lightning.V1]),
        ('install_requires=["torch", "pytorch_lightning>=1.5,<2.0"]', [Lightning.V1]),
        ('install_requires=["torch", "pytorch-lightning"]', []),  # a name pins nothing
        ("pip install `pytorch-lightning==1.9` first\n", []),  # prose
        ('pytorch-lightning = {version = "^1.9", optional = true}\n', [Lightning.V1]),
        ("  - pytorch-lightning=1.8.6\n", [Lightning.V1]),
        ("lightning-utilities==0.9\nlightning-bolts<0.7\n", []),  # other packages
        ('name = "lightning-hydra-template"\n', []),
    ],
)
def test_requirement_spellings(text: str, expected: list[Lightning]) -> None:
    assert [version for _, version in pins_in(text)] == expected


def test_pins_disagree_or_absent(tmp_path: Path) -> None:
    assert lightning_pin(tmp_path).version is Lightning.UNPINNED
    (tmp_path / "requirements.txt").write_text("pytorch-lightning==1.9.5\n")
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "dev.txt").write_text("lightning>=2.1\n")
    pin = lightning_pin(tmp_path)
    assert pin.version is Lightning.UNPINNED
    assert pin.pins == (
        "requirements.txt: pytorch-lightning==1.9.5",
        "requirements/dev.txt: lightning>=2.1",
    )
    assert pickle.loads(pickle.dumps(pin)) == pin  # travels to worker processes


def test_each_package_of_a_tree_answers_for_its_own_files(tmp_path: Path) -> None:
    """A folder of repos (or a monorepo's packages) scanned as one tree: the nearest folder
    that pins Lightning decides; a folder that pins nothing defers to the one above."""
    from codemod import api

    call = 'import lightning as L\n\nL.Trainer(strategy="ddp")\n'
    (tmp_path / "old" / "requirements").mkdir(parents=True)
    (tmp_path / "old" / "requirements" / "base.txt").write_text("pytorch-lightning==1.9.5\n")
    (tmp_path / "old" / "src").mkdir()
    (tmp_path / "old" / "src" / "train.py").write_text(call)
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "pyproject.toml").write_text(
        '[project]\ndependencies = ["lightning>=2.1"]\n'
    )
    (tmp_path / "new" / "train.py").write_text(call)
    (tmp_path / "new" / "tools").mkdir()
    (tmp_path / "new" / "tools" / "requirements.txt").write_text("numpy\n")
    (tmp_path / "new" / "tools" / "run.py").write_text(call)
    result = api.run(api.Request(paths=(".",), cwd=tmp_path))
    assert [(s.path, s.verdict.value) for s in result.sites] == [("old/src/train.py", "unknown")]
    assert "old/requirements/base.txt: pytorch-lightning==1.9.5" in result.sites[0].reason


def test_pins_are_read_once_per_project_and_only_when_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from codemod import api
    from codemod.discover import pins

    calls: list[Path] = []
    real = pins.lightning_pin
    monkeypatch.setattr(
        pins, "lightning_pin", lambda root, *a: calls.append(root) or real(root, *a)
    )
    (tmp_path / "requirements.txt").write_text("pytorch-lightning==1.9.5\n")
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text('import lightning as L\n\nL.Trainer(strategy="ddp")\n')
    (tmp_path / "c.py").write_text("import torch\n")
    result = api.run(api.Request(paths=(".",), cwd=tmp_path))
    assert [s.verdict.value for s in result.sites] == ["unknown", "unknown"]
    assert calls == [tmp_path]
    calls.clear()
    api.run(api.Request(paths=("c.py",), cwd=tmp_path))
    assert calls == []
