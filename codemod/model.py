"""The records every stage passes on: sites, verdicts, fixes and file errors.

One module holds them all so that the pipeline stages (discover, find, decide, rewrite,
report) share one vocabulary and nothing else.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

KEEP_COMMENT = re.compile(r"#\s*ddp-codemod:\s*keep\b")
EVIDENCE_DIR = ".ddp-codemod"  # under the repo root: where trace and probe leave evidence


@dataclass(frozen=True)
class Kind:
    """Which API family a site configures, named as reports show it (`torch-ddp`).

    The kinds every file type shares live here; each framework module under
    `codemod.sites.frameworks` defines its own. `built_later`: the framework builds the DDP
    after the site ran (Lightning, accelerate, the Hugging Face Trainer), so evidence pairs
    by the function that holds the site, not by the call.
    """

    value: str
    built_later: bool = field(default=False, compare=False)

    TORCH_DDP: ClassVar[Kind]
    KWARGS_DICT: ClassVar[Kind]
    CONFIG_PY: ClassVar[Kind]
    YAML: ClassVar[Kind]
    JSON: ClassVar[Kind]
    SHELL: ClassVar[Kind]

    def __str__(self) -> str:
        return self.value


Kind.TORCH_DDP = Kind("torch-ddp")
Kind.KWARGS_DICT = Kind("kwargs-dict")
Kind.CONFIG_PY = Kind("config-py")
Kind.YAML = Kind("yaml")
Kind.JSON = Kind("json")
Kind.SHELL = Kind("shell")

# covered by the runs that read them
CONFIG_KINDS = frozenset({Kind.CONFIG_PY, Kind.YAML, Kind.JSON})


class Verdict(str, enum.Enum):
    """What the tool concluded about a site; only REWRITABLE ones are ever edited."""

    SAFE = "safe"
    ALLOWED = "allowed"
    UNSAFE = "unsafe"
    STALE = "stale"
    UNKNOWN = "unknown"
    DYNAMIC = "dynamic"
    KEPT = "kept"
    OFF = "off"


REWRITABLE = frozenset({Verdict.SAFE, Verdict.ALLOWED})


class Fix(str, enum.Enum):
    """How a site is turned off under its API's own defaults."""

    REMOVE = "remove"  # drop the keyword: the API defaults to False
    WRITE_FALSE = "false"  # write False: the API's default is not False
    STRATEGY_FALSE = "strategy-false"  # Lightning strategy name: *_true -> *_false
    ADD_FALSE = "add-false"  # not written, the default is True: add `keyword=False` to the call


@dataclass(frozen=True)
class Span:
    """1-based lines, 1-based columns; end_col is exclusive."""

    line: int
    col: int
    end_line: int
    end_col: int

    def contains_line(self, line: int) -> bool:
        return self.line <= line <= self.end_line


@dataclass(frozen=True)
class Site:
    """One place that sets find_unused_parameters, and what we decided about it."""

    path: str  # POSIX, relative to the PATH argument that contained the file
    file: Path  # absolute, for reading, writing and selector matching
    span: Span  # the whole construct (the call, dict or assignment)
    setting_span: Span  # the keyword or key itself
    kind: Kind
    setting: str  # the keyword or key as written
    value: str  # source text of the value
    literal: bool | None  # True / False when the value is that literal, else None
    fix: Fix
    qualname: str  # enclosing function or class, "<module>" at top level
    callee: str  # what the construct resolves to, e.g. torch.nn.parallel.DistributedDataParallel
    keep: bool = False  # a "# ddp-codemod: keep" comment on the site's lines
    feeds: Span | None = None  # kwargs-dict only: the one DDP call it provably feeds
    note: str = ""  # why a kwargs-dict cannot be rewritten, when it cannot
    report_only: str = ""  # why this spelling is never rewritten (yacs, CLI flags, "true")
    implicit: str = ""  # not written: why the framework's default turns the flag on here
    # report only until a traced run says which version of this package it used (an
    # unpinned Lightning 1.x default): `codemod.sites.frameworks.lightning_legacy.settle`
    settles: str = ""
    verdict: Verdict = Verdict.UNKNOWN
    reason: str = ""
    unused: tuple[tuple[str, int], ...] = ()  # unsafe: parameter -> iterations without gradient
    evidence: tuple[RunSummary, ...] = ()  # the runs that cover the site
    changed: bool = False
    # branches that could skip parameters and never ran (JSON dicts: path, line, ...)
    unexercised: tuple[dict[str, object], ...] = ()
    fixed_by_config: tuple[dict[str, object], ...] = ()

    @property
    def rewritable(self) -> bool:
        return self.verdict in REWRITABLE


@dataclass(frozen=True)
class FileError:
    """A file that could not be read, parsed or written; reported, never fatal."""

    path: str
    message: str


@dataclass(frozen=True)
class FileChange:
    """A file a run rewrites (or would, under --dry-run)."""

    rel: str  # relative to `root`: diff headers
    root: Path
    file: Path
    old: bytes
    new: bytes


@dataclass
class RunResult:
    """What `scan` / `apply` found, over all PATHs."""

    sites: list[Site] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    changes: list[FileChange] = field(default_factory=list)


@dataclass
class FileOutcome:
    """What processing one file produced."""

    sites: list[Site] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    old: bytes | None = None  # original bytes, set when the file would change
    new: bytes | None = None  # rewritten bytes, set when the file would change
    matched_selectors: set[str] = field(default_factory=set)
    needs_subclasses: bool = False  # asked about a name that may be a repo DDP subclass


class State(str, enum.Enum):
    SAFE = "safe"
    UNSAFE = "unsafe"
    STALE = "stale"
    THIN = "thin"  # fresh evidence that proves too little
    AMBIGUOUS = "ambiguous"
    BLOCKED = "blocked"  # a base config whose inheritors are not all covered


@dataclass(frozen=True)
class ProbeTimes:
    """Median step times a `ddp-codemod probe` measured side by side, in milliseconds."""

    true_ms: float  # run A: find_unused_parameters=True
    false_ms: float  # run B: False
    static_graph_ms: float | None = None  # run C: static_graph=True, when it was timed

    @property
    def ratio(self) -> float:
        return self.true_ms / self.false_ms

    def as_json(self) -> dict[str, object]:
        return {
            "true_ms": self.true_ms,
            "false_ms": self.false_ms,
            "static_graph_ms": self.static_graph_ms,
            "ratio": round(self.ratio, 4),
        }


@dataclass(frozen=True)
class RunSummary:
    """One run that covers a site, as the JSON report shows it."""

    kind: str
    command: str
    world_size: int
    ranks: tuple[int, ...]
    iterations: int  # the fewest synchronising iterations of any paired instance
    files: tuple[str, ...]
    # every iteration of every rank left the same parameters unused (often: none), so
    # static_graph=True fits too; a hint in the report, never a rewrite
    static_graph_hint: bool = False
    probe: ProbeTimes | None = None  # a probe's step times
    changed: tuple[str, ...] = ()  # files the run read that have changed since
    unrecorded: tuple[str, ...] = ()  # repo code it ran whose source it could not hash

    def as_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "command": self.command,
            "world_size": self.world_size,
            "ranks": list(self.ranks),
            "iterations": self.iterations,
            "files": list(self.files),
            "static_graph_hint": self.static_graph_hint,
            "probe": self.probe.as_json() if self.probe else None,
            "changed_since": list(self.changed),
        }


@dataclass(frozen=True)
class Coverage:
    state: State
    reason: str
    unused: dict[str, int]
    runs: tuple[RunSummary, ...]
    unexercised: tuple[dict[str, object], ...] = ()  # see codemod.evidence.branches
    fixed_by_config: tuple[dict[str, object], ...] = ()
