"""Evidence decides verdicts: safe, unsafe, stale, too thin, ambiguous; bad evidence is refused.

Evidence files are written by hand in the recorder's format (tests/evidence_docs.py); the
real recorder is exercised by the torchrun tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ddp_runs import git_init
from tests.evidence_docs import call_site, frame, instance, write_run
from tests.sources import BUILD, invoke_json
from tests.sources import traced as traced_at

TRAIN = BUILD  # build() spans lines 4-7; the call spans 5-7


def run_cli(repo: Path, *args: str) -> tuple[int, dict, str]:
    return invoke_json(repo, *args)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "train.py").write_text(TRAIN)
    return root


def traced(repo: Path, **kw) -> dict:
    return traced_at(repo, "train.py", **kw)


def only_site(report: dict) -> dict:
    (site,) = report["sites"]
    return site


def test_clean_run_on_every_rank_is_safe_and_apply_rewrites(repo: Path):
    write_run(repo, [[traced(repo)], [traced(repo)]])
    code, report, _ = run_cli(repo, "scan", ".")
    site = only_site(report)
    assert code == 0
    assert site["verdict"] == "safe"
    assert site["evidence"] == [
        {
            "kind": "trace",
            "command": "torchrun --nproc_per_node=2 train.py",
            "world_size": 2,
            "ranks": [0, 1],
            "iterations": 4,
            "files": ["evidence-testhost-run-1-0.json", "evidence-testhost-run-1-1.json"],
            "static_graph_hint": True,
            "probe": None,
            "changed_since": [],
        }
    ]
    code, report, _ = run_cli(repo, "apply", ".")
    assert code == 1
    assert only_site(report)["changed"] is True
    assert "find_unused_parameters" not in (repo / "train.py").read_text()


def test_unused_on_one_rank_is_unsafe_even_when_allowlisted(repo: Path):
    write_run(repo, [[traced(repo)], [traced(repo, unused={"aux.weight": 4})]])
    code, report, _ = run_cli(repo, "apply", ".", "--allow", "train.py")
    site = only_site(report)
    assert code == 0
    assert site["verdict"] == "unsafe"
    assert site["unused"] == {"aux.weight": 4}
    assert "aux.weight (4)" in site["reason"]
    assert (repo / "train.py").read_text() == TRAIN


def test_editing_the_traced_call_makes_it_stale(repo: Path):
    write_run(repo, [[traced(repo)], [traced(repo)]])
    (repo / "train.py").write_text(
        TRAIN.replace("device_ids=[rank]", "device_ids=[rank], bucket_cap_mb=50")
    )
    code, report, _ = run_cli(repo, "apply", ".", "--allow", "train.py")
    assert code == 0
    site = only_site(report)
    assert site["verdict"] == "stale"
    assert "trace again" in site["reason"]


def test_moving_the_unchanged_call_keeps_it_safe(repo: Path):
    write_run(repo, [[traced(repo)], [traced(repo)]])
    (repo / "train.py").write_text("import os\n\n" + TRAIN)
    _, report, _ = run_cli(repo, "scan", ".")
    assert only_site(report)["verdict"] == "safe"


@pytest.mark.parametrize(
    ("per_rank", "why"),
    [
        (lambda r: [[traced(r)]], "ran at world size 1"),
        (lambda r: [[traced(r)], []], "recorded ranks [0] of 2"),
        (
            lambda r: [[traced(r, iterations=2)], [traced(r, iterations=2)]],
            "saw 2 synchronising iterations (min-steps is 3)",
        ),
    ],
    ids=["world-size-1", "missing-rank", "too-few-steps"],
)
def test_thin_evidence_is_not_enough(repo: Path, per_rank, why: str):
    write_run(repo, per_rank(repo))
    code, report, _ = run_cli(repo, "apply", ".")
    site = only_site(report)
    assert code == 0
    assert site["verdict"] == "unknown"
    assert why in site["reason"]


def test_min_steps_from_pyproject(repo: Path):
    (repo / "pyproject.toml").write_text("[tool.ddp-codemod]\nmin-steps = 5\n")
    write_run(repo, [[traced(repo)], [traced(repo)]])
    _, report, _ = run_cli(repo, "scan", ".")
    assert "min-steps is 5" in only_site(report)["reason"]


def test_thin_evidence_still_allows_an_allowlisted_site(repo: Path):
    write_run(repo, [[traced(repo)]])
    _, report, _ = run_cli(repo, "scan", ".")
    assert only_site(report)["verdict"] == "unknown"
    code, report, _ = run_cli(repo, "apply", ".", "--allow", "train.py::build")
    assert (code, only_site(report)["verdict"]) == (1, "allowed")


def test_evidence_option_file_and_folder(repo: Path, tmp_path: Path):
    elsewhere = tmp_path / "runs"
    files = write_run(repo, [[traced(repo)], [traced(repo)]], out=elsewhere)
    _, report, _ = run_cli(repo, "scan", ".")
    assert only_site(report)["verdict"] == "unknown"
    _, report, _ = run_cli(repo, "scan", ".", "--evidence", str(elsewhere))
    assert only_site(report)["verdict"] == "safe"
    _, report, _ = run_cli(repo, "scan", ".", "--evidence", str(files[0]))
    assert "recorded ranks [0] of 2" in only_site(report)["reason"]


# Bad evidence ------------------------------------------------------------------------------
def _corrupt(path: Path, how: str) -> None:
    doc = json.loads(path.read_text())
    if how == "truncated":
        path.write_text(path.read_text()[:100])
        return
    if how == "not-json":
        path.write_bytes(b"\x00\x01binary")
        return
    if how == "version":
        doc["version"] = 2
    elif how == "other-repo":
        doc["repo"]["root"] = "/somewhere/else"
    elif how == "outside-path":
        doc["instances"][0]["call_site"]["path"] = "../train.py"
    elif how == "absolute-path":
        doc["instances"][0]["frames"][0]["path"] = "/etc/train.py"
    elif how == "wrong-type":
        doc["instances"][0]["iterations"] = "4"
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("truncated", "not valid JSON (truncated?)"),
        ("not-json", "not valid JSON (truncated?)"),
        ("version", "unknown evidence format version 2"),
        ("other-repo", "recorded in another repo (/somewhere/else)"),
        ("outside-path", "names a path outside the repo: ../train.py"),
        ("absolute-path", "names a path outside the repo: /etc/train.py"),
        ("wrong-type", "'iterations' has the wrong type"),
    ],
)
def test_bad_evidence_is_one_error_and_ignored(repo: Path, how: str, message: str):
    files = write_run(repo, [[traced(repo)], [traced(repo)]])
    _corrupt(files[1], how)
    code, report, _ = run_cli(repo, "apply", ".")
    assert code == 2
    (error,) = report["errors"]
    assert error["path"].endswith(files[1].name)
    assert message in error["message"]
    site = only_site(report)
    assert site["verdict"] == "unknown"  # rank 1 no longer counts: thin evidence
    assert (repo / "train.py").read_text() == TRAIN


def test_duplicate_evidence_is_reported_once(repo: Path):
    files = write_run(repo, [[traced(repo)], [traced(repo)]])
    (files[0].parent / "copy.json").write_bytes(files[0].read_bytes())
    code, report, _ = run_cli(repo, "scan", ".")
    assert code == 2
    (error,) = report["errors"]
    assert "duplicate of" in error["message"]
    assert only_site(report)["verdict"] == "safe"


def test_evidence_survives_a_moved_repo_via_git_root_commit(repo: Path):
    commit = git_init(repo)
    files = write_run(repo, [[traced(repo)], [traced(repo)]], root="/old/clone")
    _, report, _ = run_cli(repo, "scan", ".")
    assert report["errors"][0]["message"].endswith("recorded in another repo (/old/clone)")
    for path in files:
        doc = json.loads(path.read_text())
        doc["repo"]["git_root_commit"] = commit
        path.write_text(json.dumps(doc))
    _, report, _ = run_cli(repo, "scan", ".")
    assert report["errors"] == []
    assert only_site(report)["verdict"] == "safe"


# Pairing through frames --------------------------------------------------------------------
HELPER = {
    "lib/ddp.py": """from torch.nn.parallel import DistributedDataParallel as DDP


def build_ddp_model(model, rank):
    return DDP(model, device_ids=[rank], find_unused_parameters=True)
""",
    "train.py": """from lib.ddp import build_ddp_model


def main(model):
    model = build_ddp_model(model, 0)
""",
}


def test_helper_call_pairs_by_the_call_inside_the_helper(tmp_path: Path):
    repo = tmp_path / "r"
    for rel, text in HELPER.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)

    def inst() -> dict:
        return instance(
            call_site(repo, "lib/ddp.py", 5, 5, "build_ddp_model"),
            [
                frame(repo, "lib/ddp.py", 5, "build_ddp_model", (4, 5)),
                frame(repo, "train.py", 5, "main", (4, 5)),
            ],
        )

    write_run(repo, [[inst()], [inst()]])
    _, report, _ = run_cli(repo, "scan", ".")
    assert [(s["path"], s["verdict"]) for s in report["sites"]] == [("lib/ddp.py", "safe")]


FORWARDING = {
    "lib/ddp.py": """from torch.nn.parallel import DistributedDataParallel as DDP


def make_ddp(model, **kwargs):
    return DDP(model, **kwargs)
""",
    "train.py": """from lib.ddp import make_ddp


def main(model):
    model = make_ddp(model, find_unused_parameters=True)
""",
}


def test_forwarding_helper_call_pairs_through_the_callers_frame(tmp_path: Path):
    """The keyword reaches DDP through the helper's **kwargs: the recorded call site is the
    helper's DDP call (no site there), and the caller's frame lies inside the site's span."""
    repo = tmp_path / "r"
    for rel, text in FORWARDING.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)

    def inst() -> dict:
        return instance(
            call_site(repo, "lib/ddp.py", 5, 5, "make_ddp"),
            [
                frame(repo, "lib/ddp.py", 5, "make_ddp", (4, 5)),
                frame(repo, "train.py", 5, "main", (4, 5)),
            ],
        )

    write_run(repo, [[inst()], [inst()]])
    code, report, _ = run_cli(repo, "apply", ".")
    assert [(s["path"], s["verdict"]) for s in report["sites"]] == [("train.py", "safe")]
    assert code == 1
    assert "find_unused_parameters" not in (repo / "train.py").read_text()


LIGHTNING = """import lightning as L
from lightning.pytorch.strategies import DDPStrategy


def main(model):
    trainer = L.Trainer(devices=2, strategy=DDPStrategy(find_unused_parameters=True))
    trainer.fit(model)
"""


def _framework_repo(tmp_path: Path, text: str) -> Path:
    repo = tmp_path / "fw"
    repo.mkdir()
    (repo / "train.py").write_text(text)
    return repo


def test_framework_site_pairs_through_the_function_on_the_stack(tmp_path: Path):
    repo = _framework_repo(tmp_path, LIGHTNING)
    end = len(LIGHTNING.splitlines())

    def inst(**kw) -> dict:
        return instance(None, [frame(repo, "train.py", 7, "main", (5, end))], **kw)

    write_run(repo, [[inst()], [inst()]])
    code, report, _ = run_cli(repo, "apply", ".")
    assert (code, only_site(report)["verdict"]) == (1, "safe")
    assert "find_unused_parameters=False" in (repo / "train.py").read_text()


def test_framework_ddp_built_with_false_does_not_pair(tmp_path: Path):
    repo = _framework_repo(tmp_path, LIGHTNING)
    end = len(LIGHTNING.splitlines())

    def inst() -> dict:
        return instance(None, [frame(repo, "train.py", 7, "main", (5, end))], fup=False)

    write_run(repo, [[inst()], [inst()]])
    _, report, _ = run_cli(repo, "scan", ".")
    assert only_site(report)["verdict"] == "unknown"


def test_two_framework_sites_in_one_function_are_ambiguous(tmp_path: Path):
    text = LIGHTNING.replace(
        "    trainer.fit(model)\n",
        '    trainer.fit(model)\n    L.Trainer(strategy="ddp_find_unused_parameters_true")\n',
    )
    repo = _framework_repo(tmp_path, text)
    end = len(text.splitlines())

    def inst() -> dict:
        return instance(None, [frame(repo, "train.py", 7, "main", (5, end))])

    write_run(repo, [[inst()], [inst()]])
    _, report, _ = run_cli(repo, "scan", ".")
    assert [s["verdict"] for s in report["sites"]] == ["unknown", "unknown"]
    assert all("cannot tell which" in s["reason"] for s in report["sites"])


SUBCLASS = """from torch.nn.parallel import DistributedDataParallel


class AuxDDP(DistributedDataParallel):
    def __init__(self, module, **kwargs):
        super().__init__(module, find_unused_parameters=True, **kwargs)


def wrap(model):
    return AuxDDP(model)
"""


def test_super_init_site_pairs_through_its_frame(tmp_path: Path):
    repo = _framework_repo(tmp_path, SUBCLASS)

    def inst() -> dict:
        return instance(
            call_site(repo, "train.py", 10, 10, "wrap"),
            [
                frame(repo, "train.py", 6, "AuxDDP.__init__", (5, 6)),
                frame(repo, "train.py", 10, "wrap", (9, 10)),
            ],
        )

    write_run(repo, [[inst()], [inst()]])
    _, report, _ = run_cli(repo, "scan", ".")
    assert only_site(report)["verdict"] == "safe"


KWARGS = """from torch.nn.parallel import DistributedDataParallel as DDP


def wrap(model):
    kw = dict(find_unused_parameters=True)
    return DDP(model, **kw)
"""


def test_kwargs_dict_pairs_through_the_call_it_feeds(tmp_path: Path):
    repo = _framework_repo(tmp_path, KWARGS)

    def inst() -> dict:
        return instance(
            call_site(repo, "train.py", 6, 6, "wrap"), [frame(repo, "train.py", 6, "wrap", (4, 6))]
        )

    write_run(repo, [[inst()], [inst()]])
    code, report, _ = run_cli(repo, "apply", ".")
    assert (code, only_site(report)["verdict"]) == (1, "safe")
    assert "dict(find_unused_parameters=False)" in (repo / "train.py").read_text()


def test_kwargs_dict_edit_makes_it_stale(tmp_path: Path):
    repo = _framework_repo(tmp_path, KWARGS)

    def inst():
        return instance(
            call_site(repo, "train.py", 6, 6, "wrap"), [frame(repo, "train.py", 6, "wrap", (4, 6))]
        )

    write_run(repo, [[inst()], [inst()]])
    (repo / "train.py").write_text(
        KWARGS.replace("dict(find", "dict(broadcast_buffers=False, find")
    )
    _, report, _ = run_cli(repo, "scan", ".")
    assert only_site(report)["verdict"] == "stale"


PROBE = {
    "a_median_ms": 12.5,
    "b_median_ms": 10.0,
    "c_median_ms": 9.5,
    "static_graph_ok": True,
    "params_equal": True,
}


def test_probe_evidence_shows_the_measured_saving_next_to_a_safe_site(repo: Path):
    write_run(
        repo,
        [[traced(repo)], [traced(repo)]],
        kind="probe",
        command=("ddp-codemod", "probe", "f:make", "--site", "train.py"),
        extra={"probe": PROBE},
    )
    _, report, _ = run_cli(repo, "scan", ".")
    site = only_site(report)
    assert site["verdict"] == "safe"
    assert site["evidence"][0]["probe"] == {
        "true_ms": 12.5,
        "false_ms": 10.0,
        "static_graph_ms": 9.5,
        "ratio": 1.25,
    }
    assert site["reason"].endswith(
        "; probe: 12.5 ms per step with True, 10 ms without (1.25x); every iteration used the "
        "same parameters, so static_graph=True fits too (9.5 ms per step)"
    )
    code, report, _ = run_cli(repo, "apply", ".", "--dry-run")
    assert (code, only_site(report)["changed"]) == (1, True)


def test_probe_times_without_a_checked_static_graph_run(repo: Path):
    probe = {**PROBE, "static_graph_ok": None, "c_median_ms": None}
    write_run(repo, [[traced(repo)], [traced(repo)]], kind="probe", extra={"probe": probe})
    _, report, _ = run_cli(repo, "scan", ".")
    site = only_site(report)
    assert site["evidence"][0]["probe"]["static_graph_ms"] is None
    assert "(1.25x); every iteration used the same parameters" in site["reason"]
    assert "ms per step)" not in site["reason"]


def test_probe_times_within_the_noise_are_not_shown_as_a_saving(repo: Path):
    probe = {**PROBE, "ratio_range": [0.83, 1.10], "measurable": False}
    write_run(repo, [[traced(repo)], [traced(repo)]], kind="probe", extra={"probe": probe})
    _, report, _ = run_cli(repo, "scan", ".")
    site = only_site(report)
    assert site["verdict"] == "safe"
    assert site["evidence"][0]["probe"]["ratio"] == 1.25  # the JSON keeps the numbers
    assert "; probe: no measurable step-time difference between True and False" in site["reason"]
    assert "ms per step" not in site["reason"]


def test_probe_times_are_fixed_point_milliseconds(repo: Path):
    probe = {**PROBE, "a_median_ms": 1234.56, "b_median_ms": 1110.4, "c_median_ms": 0.4123}
    probe["ratio_range"] = [1.05, 1.2]
    write_run(repo, [[traced(repo)], [traced(repo)]], kind="probe", extra={"probe": probe})
    _, report, _ = run_cli(repo, "scan", ".")
    reason = only_site(report)["reason"]
    assert "; probe: 1235 ms per step with True, 1110 ms without (1.11x)" in reason
    assert "(0.412 ms per step)" in reason and "e+" not in reason


@pytest.mark.parametrize("probe", [None, {"a_median_ms": "fast"}, {"a_median_ms": 1.0}])
def test_probe_without_usable_times_shows_none(repo: Path, probe):
    write_run(repo, [[traced(repo)], [traced(repo)]], kind="probe", extra={"probe": probe})
    _, report, _ = run_cli(repo, "scan", ".")
    site = only_site(report)
    assert (site["verdict"], site["evidence"][0]["probe"]) == ("safe", None)
    assert "probe:" not in site["reason"]


def test_trace_times_are_never_read_as_a_probe(repo: Path):
    write_run(repo, [[traced(repo)], [traced(repo)]], extra={"probe": PROBE})
    _, report, _ = run_cli(repo, "scan", ".")
    assert only_site(report)["evidence"][0]["probe"] is None


@pytest.mark.parametrize(
    ("ranks", "hint"),
    [
        ([{}, {}], True),  # every parameter, every iteration
        ([{"aux.weight": 4}, {"aux.weight": 4}], True),  # the same layer unused throughout
        ([{"aux.weight": 4}, {}], False),  # rank-dependent
    ],
    ids=["all-used", "same-unused", "by-rank"],
)
def test_static_graph_hint_where_every_iteration_used_the_same_parameters(repo, ranks, hint):
    write_run(repo, [[traced(repo, unused=unused)] for unused in ranks])
    _, report, _ = run_cli(repo, "scan", ".")
    site = only_site(report)
    assert site["evidence"][0]["static_graph_hint"] is hint
    assert ("static_graph=True fits too" in site["reason"]) is hint


def test_no_static_graph_hint_when_the_unused_set_changed(repo: Path):
    per_rank = [[traced(repo, unused={"aux.weight": 2}, stable=False)] for _ in range(2)]
    write_run(repo, per_rank)
    _, report, _ = run_cli(repo, "scan", ".")
    site = only_site(report)
    assert site["verdict"] == "unsafe"
    assert site["evidence"][0]["static_graph_hint"] is False
    assert "static_graph" not in site["reason"]


def test_a_change_in_any_file_the_run_read_makes_clean_evidence_stale(repo: Path):
    (repo / "model.py").write_text("import torch\n\nLAYERS = 2\n")
    write_run(repo, [[traced(repo)], [traced(repo)]], files_read=("train.py", "model.py"))
    _, report, _ = run_cli(repo, "scan", ".")
    assert only_site(report)["verdict"] == "safe"
    (repo / "model.py").write_text("import torch\n\nLAYERS = 3  # an aux head now\n")
    _, report, _ = run_cli(repo, "scan", ".")
    site = only_site(report)
    assert site["verdict"] == "stale"
    assert "read files that changed since: model.py; trace again" in site["reason"]
    assert site["evidence"][0]["changed_since"] == ["model.py"]


def test_unused_parameters_stay_unsafe_when_files_changed(repo: Path):
    (repo / "model.py").write_text("LAYERS = 2\n")
    unused = {"aux.weight": 4}
    write_run(repo, [[traced(repo, unused=unused)], [traced(repo)]], files_read=("model.py",))
    (repo / "model.py").write_text("LAYERS = 3\n")
    _, report, _ = run_cli(repo, "scan", ".")
    assert only_site(report)["verdict"] == "unsafe"


BRANCHES = """import lightning as L
from lightning.pytorch.strategies import DDPStrategy
from torch.nn.parallel import DistributedDataParallel as DDP


def main(model, plain):
    if plain:
        return DDP(model, find_unused_parameters=True)
    trainer = L.Trainer(devices=2, strategy=DDPStrategy(find_unused_parameters=True))
    trainer.fit(model)
"""


def test_a_ddp_the_repo_built_itself_does_not_cover_a_framework_site(tmp_path: Path):
    """Only DDP built inside framework code (no repo call site) pairs by function."""
    repo = _framework_repo(tmp_path, BRANCHES)
    end = len(BRANCHES.splitlines())

    def inst() -> dict:  # the plain branch ran; Lightning never did
        site = call_site(repo, "train.py", 8, 8, "main")
        return instance(site, [frame(repo, "train.py", 8, "main", (6, end))])

    write_run(repo, [[inst()], [inst()]])
    _, report, _ = run_cli(repo, "scan", ".")
    verdicts = {s["kind"]: s["verdict"] for s in report["sites"]}
    assert verdicts == {"torch-ddp": "safe", "lightning": "unknown"}


def test_evidence_traced_from_a_subfolder_of_the_checkout_is_refused(repo: Path):
    """Same first commit, but its paths are relative to another folder: never paired."""
    sub = repo / "sub"
    sub.mkdir()
    (sub / "train.py").write_text(TRAIN)  # the same text at another path
    commit = git_init(repo)
    for path in write_run(repo, [[traced(repo)], [traced(repo)]], root=str(sub)):
        doc = json.loads(path.read_text())
        doc["repo"]["git_root_commit"] = commit
        path.write_text(json.dumps(doc))
    code, report, _ = run_cli(repo, "scan", ".", "--evidence", str(repo / ".ddp-codemod"))
    assert code == 2
    assert all(
        "recorded with" in e["message"] and "as the root" in e["message"] for e in report["errors"]
    )
    assert {s["verdict"] for s in report["sites"]} == {"unknown"}


TWINS = """from torch.nn.parallel import DistributedDataParallel as DDP


def build(model, branch):
    if branch:
        return DDP(model, find_unused_parameters=True)
    else:
        return DDP(model, find_unused_parameters=True)
"""


def test_moved_evidence_never_pairs_with_a_twin_call_it_did_not_record(tmp_path: Path):
    """Only the first branch ran; after a line shift, its text matches both calls."""
    repo = _framework_repo(tmp_path, TWINS)

    def inst() -> dict:
        return instance(call_site(repo, "train.py", 6, 6, "build"), [])

    write_run(repo, [[inst()], [inst()]])
    _, report, _ = run_cli(repo, "scan", ".")
    assert [s["verdict"] for s in report["sites"]] == ["safe", "unknown"]
    (repo / "train.py").write_text("import os\n" + TWINS)
    _, report, _ = run_cli(repo, "scan", ".")
    assert "safe" not in [s["verdict"] for s in report["sites"]]


def _as_global_ranks(files: list[Path], ranks: list[int], world: int) -> None:
    """Rewrite hand-made evidence as processes `ranks` of a `world`-rank job whose DDP ran
    on sub-groups (`dist.new_group`): group-local ranks stay as they are."""
    for path, rank in zip(files, ranks):
        doc = json.loads(path.read_text())
        doc.update(rank=rank, world_size=world, pid=2000 + rank)
        path.write_text(json.dumps(doc))


def test_subgroup_evidence_from_one_node_does_not_cover_the_job(repo: Path, tmp_path: Path):
    node0 = write_run(repo, [[traced(repo)], [traced(repo)]], out=tmp_path / "node0")
    _as_global_ranks(node0, [0, 1], 4)
    _, report, _ = run_cli(repo, "scan", ".", "--evidence", str(tmp_path / "node0"))
    site = only_site(report)
    assert site["verdict"] == "unknown"
    assert "recorded ranks [0, 1] of 4" in site["reason"]
    node1 = write_run(repo, [[traced(repo)], [traced(repo)]], out=tmp_path / "node1")
    _as_global_ranks(node1, [2, 3], 4)
    _, report, _ = run_cli(
        repo,
        "scan",
        ".",
        "--evidence",
        str(tmp_path / "node0"),
        "--evidence",
        str(tmp_path / "node1"),
    )
    site = only_site(report)
    assert site["verdict"] == "safe"
    assert (site["evidence"][0]["world_size"], site["evidence"][0]["ranks"]) == (4, [0, 1, 2, 3])


def test_a_run_that_ran_code_it_could_not_record_does_not_make_a_site_safe(repo: Path):
    files = write_run(repo, [[traced(repo)], [traced(repo)]])
    doc = json.loads(files[1].read_text())
    doc["unrecorded_sources"] = ["model_impl.py"]  # bytecode only: an edit would go unseen
    files[1].write_text(json.dumps(doc))
    _, report, _ = run_cli(repo, "scan", ".")
    site = only_site(report)
    assert site["verdict"] == "unknown"
    assert "could not record (model_impl.py" in site["reason"]


def test_unrecorded_sources_must_be_repo_paths(repo: Path):
    files = write_run(repo, [[traced(repo)], [traced(repo)]])
    doc = json.loads(files[0].read_text())
    doc["unrecorded_sources"] = ["../outside.py"]
    files[0].write_text(json.dumps(doc))
    code, report, _ = run_cli(repo, "scan", ".")
    assert code == 2
    assert "names a path outside the repo" in report["errors"][0]["message"]


def test_stale_probe_evidence_says_probe_again(repo: Path):
    write_run(repo, [[traced(repo)], [traced(repo)]], kind="probe")
    (repo / "train.py").write_text(
        TRAIN.replace("device_ids=[rank]", "device_ids=[rank], bucket_cap_mb=50")
    )
    _, report, _ = run_cli(repo, "scan", ".")
    site = only_site(report)
    assert site["verdict"] == "stale"
    assert "probed it; probe again" in site["reason"]
