"""Which Lightning a repo says it runs on, read from its own dependency pins.

Lightning 1.x turned find_unused_parameters on when `strategy="ddp"` or `DDPStrategy()`
did not say; 2.0 made False the default (Lightning PR #16611). Whether those spellings
are sites is read, only when a candidate file needs it, from requirements*.txt (in a
folder and one folder down), setup.py, setup.cfg, pyproject.toml and conda environment
files: those of the nearest folder at or above the file, up to the project root, that pin
Lightning at all (`NearestPins`), so each package of a monorepo, or each repo of a folder
of repos, answers for its own files. A pin or an upper bound
below 2.0 means 1.x; a lower bound of 2.0 or more means 2.x; no pin, or pins that
disagree, leave it to whatever Lightning is installed.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# pytorch-lightning / pytorch_lightning / lightning, never lightning-utilities or -bolts
_NAME = r"(?<![\w.-])(?:pytorch[-_.]lightning|lightning)(?![\w-])"
_SPEC = re.compile(r"(===|==|>=|<=|~=|!=|<|>|=|\^)\s*v?(\d+(?:\.\d+)*)")
# `name[extras] <spec>` in a requirement line, a quoted string, a conda or poetry entry
# where a requirement starts: a line (`- ` in conda files) or a quoted string, not prose
_START = r"(?:^[ \t]*(?:-[ \t]*)?|(?<=[\"']))"
_REQUIREMENT = re.compile(
    _START + _NAME + r"\s*(?:\[[^\]]*\])?\s*[\"']?\s*(?::|=\s*[\"'{])?([^#\n]*)", re.M
)
_FILES = ("setup.py", "setup.cfg", "pyproject.toml", "environment.yml", "environment.yaml")
_REQS = re.compile(r"^(requirements.*\.(txt|in)|.*environment.*\.ya?ml|conda.*\.ya?ml)$")
_REQ_DIRS = ("requirements", "reqs", "requirement", "env", "envs", "conda", "docker")


class Lightning(str, enum.Enum):
    """What the pins say about the Lightning the project runs on."""

    V1 = "1.x"  # a pin or upper bound below 2.0
    V2 = "2.x"  # a lower bound at 2.0 or above
    UNPINNED = "unpinned"  # no pin, no bound either way, or pins that disagree


@dataclass(frozen=True)
class LightningPin:
    """The verdict and the pin lines it rests on, for the reason a report gives."""

    version: Lightning
    pins: tuple[str, ...] = ()  # "requirements.txt: pytorch-lightning==1.9.5"

    def describe(self) -> str:
        shown = "; ".join(self.pins[:3]) + (" ..." if len(self.pins) > 3 else "")
        return shown or "no pin of pytorch-lightning or lightning"


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())


def classify(spec: str) -> Lightning:
    """`==1.9.5`, `>=1.5,<2.0`, `^1.9`, `=1.8.6` (conda) -> V1; `>=2.1` -> V2; `` -> UNPINNED."""
    below = above = False
    for op, raw in _SPEC.findall(spec):
        v = _version(raw)
        major = v[0] if v else 0
        if op == "<":
            below |= v <= (2,) + (0,) * (len(v) - 1)  # <2.0 and <1.9 exclude 2.x; <2.1 not
        elif op == "<=":
            below |= major < 2
        elif op in (">", ">="):
            above |= major >= 2
        elif op in ("==", "===", "=", "~=", "^"):
            below |= major < 2
            above |= major >= 2
    if below == above:
        return Lightning.UNPINNED
    return Lightning.V1 if below else Lightning.V2


def _candidates(root: Path) -> Iterable[Path]:
    for name in _FILES:
        path = root / name
        if path.is_file():
            yield path
    folders = [root, *(root / d for d in _REQ_DIRS)]
    for folder in folders:
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            continue
        for path in entries:
            at_root = folder == root
            if at_root and path.name in _FILES:
                continue  # read above already
            listed = _REQS.match(path.name) or (
                not at_root and folder.name.startswith("req") and path.suffix in (".txt", ".in")
            )
            if listed and path.is_file():
                yield path


def pins_in(text: str) -> list[tuple[str, Lightning]]:
    """Each Lightning requirement with a version specifier in a dependency file, with what
    it says (a bare name, or the word in a string, pins nothing)."""
    out: list[tuple[str, Lightning]] = []
    for match in _REQUIREMENT.finditer(text):
        spec = re.sub(r"^\s*version\s*=\s*[\"']", "", match.group(1))  # poetry {version = ..}
        spec = spec.split('"')[0].split("'")[0].split(";")[0]
        if not _SPEC.search(spec):
            continue
        start = text.rfind("\n", 0, match.start()) + 1
        end = text.find("\n", match.start())
        line = text[start : end if end >= 0 else len(text)].strip()  # shown as the file has it
        out.append((line[:80], classify(spec)))
    return out


def lightning_pin(root: Path, shown_from: Path | None = None) -> LightningPin:
    """What `root`'s dependency files pin Lightning to (their paths shown relative to
    `shown_from`, default `root`)."""
    base = shown_from or root
    found: list[tuple[str, Lightning]] = []
    for path in _candidates(root):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        rel = path.relative_to(base).as_posix()
        found.extend((f"{rel}: {line}", version) for line, version in pins_in(text))
    decided = {version for _, version in found if version is not Lightning.UNPINNED}
    if len(decided) != 1:
        return LightningPin(Lightning.UNPINNED, tuple(line for line, _ in found))
    version = decided.pop()
    return LightningPin(version, tuple(line for line, v in found if v is version))


class NearestPins:
    """The Lightning pin that governs each folder of a project: that of the nearest folder,
    from the file's own up to the project root, whose dependency files pin Lightning.

    A monorepo's packages, or a folder of repos scanned as one tree, each declare their
    own; a folder whose files pin nothing defers to the one above. Each folder is read
    once.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._own: dict[Path, LightningPin] = {}
        self._governing: dict[Path, LightningPin] = {}

    def for_folder(self, folder: Path) -> LightningPin:
        pin = self._governing.get(folder)
        if pin is None:
            own = self._own_pin(folder)
            if own.pins or folder == self.root or self.root not in folder.parents:
                pin = own
            else:
                pin = self.for_folder(folder.parent)
            self._governing[folder] = pin
        return pin

    def _own_pin(self, folder: Path) -> LightningPin:
        pin = self._own.get(folder)
        if pin is None:
            pin = self._own[folder] = lightning_pin(folder, self.root)
        return pin
