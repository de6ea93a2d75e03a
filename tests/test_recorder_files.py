"""The file-read audit hook: which repo files a traced process read, with their hashes."""

from __future__ import annotations

import hashlib
import json
import os
import py_compile
import subprocess
import sys
from pathlib import Path

import pytest

from codemod.recorder import FOLDER
from codemod.recorder._ddp_codemod_files import FilesRead


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_reads_under_the_root_are_noted_with_their_hashes(tmp_path: Path):
    root = tmp_path / "repo"
    (root / "configs").mkdir(parents=True)
    cfg, model, out = root / "configs/exp.yaml", root / "model.py", root / "dumped.py"
    cfg.write_text("find_unused_parameters: true\n")
    model.write_text("LAYERS = 2\n")
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text("a: 1\n")
    files = FilesRead(str(root))
    files.hook("open", (str(cfg), "r", 0))
    files.hook("open", (str(model), "rb", 0))
    files.hook("open", (str(out), "w", 0))  # written by the run, not read
    files.hook("open", (str(root / "data.jpg"), "rb", 0))  # not a config or source
    files.hook("open", (str(outside), "r", 0))  # outside the repo
    files.hook("exec", (None,))  # other events are ignored
    assert files.snapshot() == [
        {"path": "configs/exp.yaml", "sha256": _sha(cfg)},
        {"path": "model.py", "sha256": _sha(model)},
    ]


def test_a_cached_module_counts_as_its_source(tmp_path: Path):
    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    source = tmp_path / "pkg" / "heads.py"
    source.write_text("AUX = True\n")
    files = FilesRead(str(tmp_path))
    pyc = tmp_path / "pkg" / "__pycache__" / f"heads.{sys.implementation.cache_tag}.pyc"
    files.hook("open", (str(pyc), "rb", 0))
    assert files.snapshot() == [{"path": "pkg/heads.py", "sha256": _sha(source)}]


def test_os_open_flags_tell_writes_from_reads(tmp_path: Path):
    target = tmp_path / "cfg.yaml"
    target.write_text("a: 1\n")
    files = FilesRead(str(tmp_path))
    files.hook("open", (str(target), None, os.O_WRONLY | os.O_CREAT))
    assert files.snapshot() == []
    files.hook("open", (str(target), None, os.O_RDONLY))
    assert [f["path"] for f in files.snapshot()] == ["cfg.yaml"]


def test_a_file_edited_during_the_run_keeps_the_hash_first_seen(tmp_path: Path):
    model = tmp_path / "model.py"
    model.write_text("LAYERS = 2\n")
    first = _sha(model)
    files = FilesRead(str(tmp_path))
    files.hook("open", (str(model), "rb", 0))
    assert files.snapshot() == [{"path": "model.py", "sha256": first}]
    model.write_text("LAYERS = 3  # edited while training runs\n")
    assert files.snapshot() == [{"path": "model.py", "sha256": first}]


def test_a_snapshot_resolves_each_repo_path_once_and_never_one_outside(tmp_path: Path, monkeypatch):
    """Resolving every file ever opened at every write stalled training ~50 ms a second."""
    root = tmp_path / "repo"
    root.mkdir()
    outside = tmp_path / "site"
    outside.mkdir()
    files = FilesRead(str(root))
    resolved: list[str] = []
    real = os.path.realpath

    def counting(path, *args, **kwargs):
        resolved.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os.path, "realpath", counting)
    for i in range(50):
        (root / f"m{i}.py").write_text(f"X = {i}\n")
        files.hook("open", (str(root / f"m{i}.py"), "r", 0))
        files.hook("open", (str(outside / f"lib{i}.py"), "r", 0))  # torch, the stdlib, ...
    first = files.snapshot()
    assert len(first) == 50
    for _ in range(3):
        files.hook("open", (str(root / "m0.py"), "r", 0))
        assert files.snapshot() == first
    assert sorted(resolved) == sorted(str(root / f"m{i}.py") for i in range(50))


@pytest.mark.parametrize(
    "spelled",
    ["{root}/./cfg.yaml", "{root}//cfg.yaml", "{root}/sub/../cfg.yaml", "{out}/../repo/cfg.yaml"],
)
def test_an_open_is_noted_by_its_normalised_path(tmp_path: Path, spelled: str):
    """The hook skips abspath for paths that are already normal; the others still get it."""
    root = tmp_path / "repo"
    (root / "sub").mkdir(parents=True)
    (root / "cfg.yaml").write_text("a: 1\n")
    files = FilesRead(str(root))
    files.hook("open", (spelled.format(root=root, out=tmp_path / "x"), "r", 0))
    files.hook("open", (str(tmp_path / "repo.yaml"), "r", 0))  # shares the root's prefix
    assert [f["path"] for f in files.snapshot()] == ["cfg.yaml"]


def test_every_repo_file_read_counts_whatever_its_extension(tmp_path: Path):
    names = ["a.json", "b.toml", "c.ini", "d.cfg", "e.txt", "f", "g.yml", "h.py", "i.csv"]
    for name in names:
        (tmp_path / name).write_text("x\n")
    (tmp_path / "dumped.json").write_text("{}\n")
    files = FilesRead(str(tmp_path))
    for name in names:
        files.hook("open", (str(tmp_path / name), "r", 0))
    files.hook("open", (str(tmp_path / "dumped.json"), "w", 0))  # written only
    files.hook("open", (str(tmp_path / "log.txt"), "a", 0))  # appended only
    assert [f["path"] for f in files.snapshot()] == sorted(names)


def _run(code: str, cwd: Path, *args: str, **env: str) -> str:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("DDP_CODEMOD_", "PYTHON"))}
    full.update(env)
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


IMPORTS = f"""\
import json, os, sys
sys.path.insert(0, {str(FOLDER)!r})
import early  # before the hook is installed, like a repo's own sitecustomize
import _ddp_codemod_files as files
files.install(".")
import importlib.resources
import configs.exp
import pkg.model
importlib.resources.files("pkg").joinpath("data.yaml").read_text()
for gone in sys.argv[1:]:  # a checkout changed under the running job
    os.remove(gone)
print(json.dumps({{"read": files.snapshot(), "unrecorded": files.unrecorded()}}))
"""


def _import_repo(root: Path) -> Path:
    for rel, text in {
        "early.py": "E = 1\n",
        "configs/__init__.py": "",
        "configs/exp.py": "find_unused_parameters = True\n",
        "pkg/__init__.py": "",
        "pkg/model.py": "import pkg.helpers\n",
        "pkg/helpers.py": "H = 1\n",
        "pkg/data.yaml": "a: 1\n",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


EXPECTED = [
    "configs/__init__.py",
    "configs/exp.py",
    "early.py",
    "pkg/__init__.py",
    "pkg/data.yaml",
    "pkg/helpers.py",
    "pkg/model.py",
]


@pytest.mark.parametrize("prefix", [False, True], ids=["pycache", "PYTHONPYCACHEPREFIX"])
def test_files_reached_by_import_are_recorded_from_cached_bytecode_too(tmp_path: Path, prefix):
    root = _import_repo(tmp_path / "repo")
    env = {"PYTHONPYCACHEPREFIX": str(tmp_path / "cache")} if prefix else {}
    _run(IMPORTS, root, **env)  # compiles the bytecode
    assert (tmp_path / "cache").is_dir() is prefix
    seen = json.loads(_run(IMPORTS, root, **env))  # loads it: no source is opened now
    assert [f["path"] for f in seen["read"]] == EXPECTED
    assert seen["read"][EXPECTED.index("pkg/model.py")]["sha256"] == _sha(root / "pkg/model.py")
    assert seen["unrecorded"] == []


def test_modules_whose_source_cannot_be_found_are_named(tmp_path: Path):
    root = _import_repo(tmp_path / "repo")
    cache = tmp_path / "cache"
    _run(IMPORTS, root, PYTHONPYCACHEPREFIX=str(cache))
    py_compile.compile(str(root / "early.py"), cfile=str(root / "early.pyc"))
    (root / "early.py").unlink()  # a sourceless module
    helpers = str(root / "pkg/helpers.py")  # removed after it ran from cached bytecode
    seen = json.loads(_run(IMPORTS, root, helpers, PYTHONPYCACHEPREFIX=str(cache)))
    read = [f["path"] for f in seen["read"]]
    assert "pkg/helpers.py" not in read and "early.py" not in read
    assert seen["unrecorded"] == ["early.pyc", "pkg/helpers.py"]


def test_looking_at_imported_modules_never_loads_a_lazy_one(tmp_path: Path, monkeypatch):
    (tmp_path / "lazy_mod.py").write_text("raise RuntimeError('loaded')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib.util

    spec = importlib.util.find_spec("lazy_mod")
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "lazy_mod", module)
    loader.exec_module(module)
    files = FilesRead(str(tmp_path))
    assert [f["path"] for f in files.snapshot()] == ["lazy_mod.py"]  # named, not run


def test_evidence_written_into_the_repo_root_itself_excludes_nothing(tmp_path: Path):
    (tmp_path / "cfg.yaml").write_text("a: 1\n")
    files = FilesRead(str(tmp_path), out=str(tmp_path))
    files.hook("open", (str(tmp_path / "cfg.yaml"), "r", 0))
    assert [f["path"] for f in files.snapshot()] == ["cfg.yaml"]


def test_the_installed_audit_hook_is_a_plain_function_that_notes_opens(tmp_path: Path):
    # CPython looks up `__cantrace__` on every audit hook at every audited event (a torch
    # training step raises `builtins.id` hundreds of times): on a bound method the miss
    # raises and clears an AttributeError, 0.6 us more per event than on a function.
    (tmp_path / "cfg.yaml").write_text("a: 1\n")
    code = f"""
import json, sys, types
sys.path.insert(0, {str(FOLDER)!r})
hooks = []
sys.addaudithook = hooks.append
import _ddp_codemod_files as files
files.install({str(tmp_path)!r})
(hook,) = hooks
hook("builtins.id", (1,))
hook("open", ({str(tmp_path / "cfg.yaml")!r}, "r", 0))
print(json.dumps([type(hook) is types.FunctionType, files.snapshot()]))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    is_function, read = json.loads(done.stdout)
    assert is_function and [r["path"] for r in read] == ["cfg.yaml"]
