"""pre-commit's calling convention, and the hooks in .pre-commit-hooks.yaml run for real.

pre-commit runs a hook from the repo root with the staged files as relative paths, split
over several parallel calls. Config, evidence and subclasses must come from the repo
root, not from the files a call happens to get.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.evidence_docs import write_run
from tests.sources import BUILD, DDP_IMPORT, GIT_IDENTITY, SITE, invoke, traced

CHECKOUT = Path(__file__).resolve().parents[1]
ALLOWED = SITE
SUBCLASS = "import torch\n\n\nclass MyDDP(torch.nn.parallel.DistributedDataParallel):\n    pass\n"
USES_SUBCLASS = "from pkg.parallel import MyDDP\n\nnet = MyDDP(net, find_unused_parameters=True)\n"
PYPROJECT = """[tool.ddp-codemod]
allow = ["allowed.py", "uses_subclass.py"]
exclude = ["third_party/", "legacy/**/*.py"]
"""


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _make_repo(root: Path) -> Path:
    """A training repo as pre-commit sees it: config, evidence, excludes, a subclass."""
    _write(
        root,
        {
            "pyproject.toml": PYPROJECT,
            "allowed.py": ALLOWED,
            "traced.py": BUILD,
            "unknown.py": ALLOWED,
            "pkg/__init__.py": "",
            "pkg/parallel.py": SUBCLASS,
            "uses_subclass.py": USES_SUBCLASS,
            "third_party/vendored.py": ALLOWED,
            "legacy/old/train.py": ALLOWED,
            "configs/ddp.yaml": "trainer:\n  find_unused_parameters: true\n",
        },
    )
    write_run(root, [[traced(root, "traced.py")], [traced(root, "traced.py")]])
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return _make_repo(tmp_path / "repo")


def _hook(repo: Path, *args: str):
    """A hook call the way pre-commit makes it: cwd is the repo root, paths are relative."""
    return invoke(repo, "apply", *args)


# The calling convention, through the CLI ----------------------------------------------------
def test_each_file_alone_gets_config_evidence_and_subclasses_from_the_root(repo: Path):
    rewritten = {"allowed.py", "traced.py", "uses_subclass.py"}
    for rel in ["allowed.py", "traced.py", "unknown.py", "pkg/parallel.py", "uses_subclass.py"]:
        before = (repo / rel).read_text()
        result = _hook(repo, rel)
        assert result.exit_code == (1 if rel in rewritten else 0), (rel, result.output)
        changed = (repo / rel).read_text() != before
        assert changed == (rel in rewritten), rel
    assert "find_unused_parameters" in (repo / "unknown.py").read_text()


def test_split_calls_match_one_call(repo: Path, tmp_path: Path):
    whole = _make_repo(tmp_path / "whole")
    files = ["allowed.py", "traced.py", "unknown.py", "pkg/parallel.py", "uses_subclass.py"]
    assert _hook(whole, *files).exit_code == 1
    assert _hook(repo, *files[:2]).exit_code == 1
    assert _hook(repo, *files[2:]).exit_code == 1
    for rel in files:
        assert (repo / rel).read_text() == (whole / rel).read_text(), rel


def test_exclude_holds_for_files_passed_by_name(repo: Path):
    result = _hook(repo, "third_party/vendored.py", "legacy/old/train.py", "--allow", "**")
    assert result.exit_code == 0
    assert (repo / "third_party/vendored.py").read_text() == ALLOWED
    assert (repo / "legacy/old/train.py").read_text() == ALLOWED


def test_yaml_files_are_accepted_and_left_alone(repo: Path):
    result = _hook(repo, "configs/ddp.yaml", "unknown.py")
    assert result.exit_code == 0, result.output
    assert "error" not in result.output


def test_root_is_the_repo_not_the_files_folder(repo: Path):
    # a sub-project pyproject.toml without our table does not move the root
    _write(repo, {"pkg/pyproject.toml": "[project]\nname = 'pkg'\n", "pkg/allowed.py": ALLOWED})
    assert _hook(repo, "pkg/allowed.py", "--allow", "pkg/allowed.py").exit_code == 1


# The real pre-commit ------------------------------------------------------------------------
def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env=_env())


def _env() -> dict[str, str]:
    return {**os.environ, **GIT_IDENTITY}


def _try_repo(repo: Path, *hook: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pre_commit", "try-repo", str(CHECKOUT), *hook, "--all-files"]
    return subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=_env())


def needs_checkout(test):
    skip = pytest.mark.skipif(
        not (CHECKOUT / ".git").exists(), reason="try-repo needs the project as a git checkout"
    )
    return pytest.mark.precommit(skip(test))


@needs_checkout
def test_hook_rewrites_fails_then_passes(repo: Path):
    for i in range(12):  # enough files for pre-commit to split them over parallel calls
        _write(repo, {f"models/m{i}.py": f"import torch\n\nWIDTH = {i}\n"})
    _git(repo, "init", "-q")
    _git(repo, "add", ".")  # staged, never committed
    first = _try_repo(repo, "ddp-codemod")
    assert first.returncode == 1, first.stdout + first.stderr
    assert "files were modified by this hook" in first.stdout
    assert (repo / "allowed.py").read_text() == DDP_IMPORT + "model = DDP(model)\n"
    assert "find_unused_parameters" not in (repo / "traced.py").read_text()  # evidence
    assert "MyDDP(net)" in (repo / "uses_subclass.py").read_text()  # subclass in another file
    for untouched in ["unknown.py", "third_party/vendored.py", "legacy/old/train.py"]:
        assert (repo / untouched).read_text() == ALLOWED, untouched
    second = _try_repo(repo, "ddp-codemod")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Passed" in second.stdout


@needs_checkout
def test_check_hook_fails_with_a_diff_and_writes_nothing(tmp_path: Path):
    repo = tmp_path / "repo"
    _write(repo, {"pyproject.toml": PYPROJECT, "allowed.py": ALLOWED})
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    result = _try_repo(repo, "ddp-codemod-check")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "-model = DDP(model, find_unused_parameters=True)" in result.stdout
    assert "files were modified" not in result.stdout
    assert (repo / "allowed.py").read_text() == ALLOWED


@needs_checkout
def test_both_hooks_pass_when_nothing_is_covered(tmp_path: Path):
    repo = tmp_path / "repo"
    _write(repo, {"train.py": ALLOWED, "util.py": "import torch\n", "cfg.yaml": "lr: 0.1\n"})
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    result = _try_repo(repo)  # every hook in the manifest
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("Passed") == 2
    assert (repo / "train.py").read_text() == ALLOWED


# The README's snippet, as written -----------------------------------------------------------
README = CHECKOUT / "README.md"
PLACEHOLDER = "git+https://example.invalid/ddp-codemod@COMMIT"


def readme_precommit_config() -> str:
    """The ```yaml block of README's pre-commit section."""
    section = README.read_text(encoding="utf-8").split("\n## pre-commit\n", 1)[1]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]


def test_readme_snippet_matches_the_hook_manifest():
    import yaml

    (repo_entry,) = yaml.safe_load(readme_precommit_config())["repos"]
    (hook,) = repo_entry["hooks"]
    (manifest,) = [
        h
        for h in yaml.safe_load((CHECKOUT / ".pre-commit-hooks.yaml").read_text())
        if h["id"] == hook["id"]
    ]
    for key in ("entry", "language", "types_or"):
        assert hook[key] == manifest[key], key
    assert "rev" not in repo_entry or not str(repo_entry["rev"]).startswith("v")  # no tag yet
    assert any(PLACEHOLDER in dep for dep in hook["additional_dependencies"])


@pytest.mark.precommit
def test_readme_snippet_runs_with_the_real_pre_commit(tmp_path: Path):
    repo = _make_repo(tmp_path / "repo")
    config = readme_precommit_config().replace(PLACEHOLDER, CHECKOUT.as_uri())
    assert config != readme_precommit_config()  # only the package's location is replaced
    (repo / ".pre-commit-config.yaml").write_text(config)
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    env = {**_env(), "PRE_COMMIT_HOME": str(tmp_path / "cache")}  # a fresh install of this tree
    cmd = [sys.executable, "-m", "pre_commit", "run", "--all-files"]
    first = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=env)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "files were modified by this hook" in first.stdout
    assert (repo / "allowed.py").read_text() == DDP_IMPORT + "model = DDP(model)\n"
    assert (repo / "unknown.py").read_text() == ALLOWED
    _git(repo, "add", ".")
    second = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Passed" in second.stdout
