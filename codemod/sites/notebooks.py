"""Jupyter notebooks: the Python sites of their code cells, mapped onto the .ipynb file.

The code cells, in order, are one module (an import in cell 2 resolves a call in cell 5).
IPython magics (`%time`, `!pip`, `obj?`) become comments of the same length, so columns
hold; cells under a non-Python cell magic (`%%bash`) and cells that do not parse are blank
lines. A site's position is where its characters lie in the notebook's JSON text: `line`
is the JSON line of the cell source string (the line a `path:LINE` selector names), and
the reason starts with `cell N, line L:` (N counts every cell from 1, as Jupyter shows
them; L is the line inside the cell).

A rewrite edits the module text with the ordinary Python rewriter and writes the changed
cells back as JSON strings. That happens only when each changed cell stores its source
the way nbformat does (a list of one-line strings, or one string, each encoded exactly as
`json.dumps` would, with one separator between items), so every other byte stays; the new
notebook is parsed again and must give back exactly the rewritten code. Any other cell's
sites are reported only.
"""

from __future__ import annotations

import bisect
import difflib
import json
import re
from dataclasses import dataclass, field

from codemod.sites.json_files import JsonError, Node, parse

_MAGIC_LINE = re.compile(r"^([ \t]*)([%!])")
_HELP_LINE = re.compile(r"^[ \t]*[\w.]+\?\??[ \t]*$")
_PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug"})
_NEWLINE = re.compile(r"(?<=\n)")
# ends every cell in the module text, so the rewritten module splits back into its cells
BOUNDARY = "# ddp-codemod: end of notebook cell\n"
NOT_EDITABLE = (
    "this notebook cell stores its source in a form ddp-codemod cannot write back byte for "
    "byte (not one line per JSON string, or escapes json.dumps would not write); report only"
)


class NotebookError(Exception):
    """The notebook cannot be read, or a rewrite cannot be written back; one line."""


def _raw_offsets(text: str, token: Node) -> list[int]:
    """For each decoded character of a string token, the offset of its raw text, plus the
    offset of the closing quote."""
    out: list[int] = []
    i, end = token.start + 1, token.end - 1
    while i < end:
        out.append(i)
        if text[i] != "\\":
            i += 1
        elif text[i + 1] != "u":
            i += 2
        else:
            unit = int(text[i + 2 : i + 6], 16)
            paired = 0xD800 <= unit < 0xDC00 and text.startswith("\\u", i + 6)
            i += 12 if paired else 6
    out.append(end)
    return out


@dataclass
class Cell:
    number: int  # 1-based, counting every cell
    source: Node  # the `source` value: an array of strings, or one string
    parts: list[Node]  # its string tokens
    text: str  # the decoded source
    offsets: list[int]  # decoded character -> raw offset in the notebook text
    editable: bool = False
    ensure_ascii: bool = False
    separator: str = ""  # raw text between two items of the source array
    first_line: int = 0  # 1-based line of the cell's first line in the module text
    lines: int = 0  # how many module lines the cell takes


@dataclass
class Notebook:
    text: str
    cells: list[Cell] = field(default_factory=list)
    module: str = ""  # the code cells as one Python module (masked)
    problems: list[str] = field(default_factory=list)  # cells with a site that do not parse
    _line_starts: list[int] = field(default_factory=list)

    def cell_at(self, line: int) -> Cell:
        """The cell that holds module line `line`."""
        starts = [c.first_line for c in self.cells]
        return self.cells[bisect.bisect_right(starts, line) - 1]

    def position(self, line: int, col: int) -> tuple[int, int]:
        """Module (line, 1-based column) -> notebook JSON (line, 1-based column)."""
        cell = self.cell_at(line)
        cell_lines = _lines(cell.text) or [""]
        index = line - cell.first_line
        offset = sum(len(x) for x in cell_lines[:index]) + col - 1
        raw = cell.offsets[min(offset, len(cell.offsets) - 1)]
        row = bisect.bisect_right(self._line_starts, raw) - 1
        return row + 1, raw - self._line_starts[row] + 1


def _lines(text: str) -> list[str]:
    """Lines with their `\n` (nbformat's only line end)."""
    return [x for x in _NEWLINE.split(text) if x]


def _mask_line(line: str) -> str:
    """A magic or help line as a comment of the same length; anything else as it is."""
    match = _MAGIC_LINE.match(line)
    if match is None and _HELP_LINE.match(line.rstrip("\r\n")):
        match = re.match(r"^([ \t]*)(\S)", line)
    if match is None:
        return line
    return line[: match.start(2)] + "#" + line[match.end(2) :]


def _mask(text: str) -> str | None:
    """The cell as Python; None for a cell magic whose body is not Python (`%%bash`)."""
    if text.startswith("%%"):
        name = re.match(r"%%(\w*)", text)
        if name is None or name.group(1) not in _PYTHON_CELL_MAGICS:
            return None
    return "".join(_mask_line(line) for line in _lines(text))


def _encoding(text: str, cell: Cell) -> None:
    """Whether the cell can be written back, and with which json.dumps setting."""
    values = [p.value for p in cell.parts]
    if not values:
        return
    if cell.source.kind == "array" and [v for x in values for v in _lines(x)] != values:
        return  # not one line per string
    separators = {text[a.end : b.start] for a, b in zip(cell.parts, cell.parts[1:])}
    if len(separators) > 1:
        return
    cell.separator = separators.pop() if separators else ""
    raws = [text[p.start : p.end] for p in cell.parts]
    for ensure_ascii in (False, True):
        if all(json.dumps(v, ensure_ascii=ensure_ascii) == r for v, r in zip(values, raws)):
            cell.editable, cell.ensure_ascii = True, ensure_ascii
            return


def _fields(node: Node) -> dict[str, Node]:
    return {k.value: v for k, v in node.items} if node.kind == "object" else {}


def read(text: str, wanted: str) -> Notebook:
    """The notebook's code cells; a cell that mentions `wanted` (lowercase) and does not
    parse is a problem (its sites cannot be reported)."""
    import ast

    try:
        root = parse(text)
    except JsonError as exc:
        raise NotebookError(str(exc)) from None
    listed = _fields(root).get("cells")
    if listed is None or listed.kind != "array":
        raise NotebookError("not a Jupyter notebook: no `cells` list")
    nb = Notebook(text)
    nb._line_starts = [0, *(m.end() for m in re.finditer(r"\r\n|\r|\n", text))]
    chunks: list[str] = []
    line = 1
    for number, node in enumerate(listed.items, start=1):
        fields = _fields(node)
        kind, source = fields.get("cell_type"), fields.get("source")
        if kind is None or kind.value != "code" or source is None:
            continue
        parts = source.items if source.kind == "array" else [source]
        if not parts or not all(p.kind == "string" for p in parts):
            continue
        offsets: list[int] = []
        for part in parts:
            offsets.extend(_raw_offsets(text, part)[:-1])
        offsets.append(parts[-1].end - 1)
        cell = Cell(number, source, parts, "".join(p.value for p in parts), offsets)
        _encoding(text, cell)
        count = max(len(_lines(cell.text)), 1)
        masked = _mask(cell.text)
        if masked is not None:
            try:
                ast.parse(masked)
            except (SyntaxError, ValueError) as exc:
                if wanted in cell.text.lower():
                    where = getattr(exc, "lineno", None)
                    at = f" (line {where} of the cell)" if where else ""
                    nb.problems.append(f"cell {number} does not parse as Python{at}")
                masked = None
        if masked is None:
            masked = "\n" * count
        elif not masked.endswith("\n"):
            masked += "\n"
        cell.first_line, cell.lines = line, count
        line += count + 1
        nb.cells.append(cell)
        chunks.append(masked + BOUNDARY)
    nb.module = "".join(chunks)
    return nb


def _new_cell_text(cell: Cell, old_masked: str, new_masked: str) -> str:
    """The cell's new source: the rewritten lines, and its own lines (magics unmasked)
    where nothing changed."""
    old_lines, new_lines = _lines(old_masked), _lines(new_masked)
    mine = _lines(cell.text)
    out: list[str] = []
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out.extend(mine[i] if i < len(mine) else "" for i in range(i1, i2))
            continue
        if any(
            i < len(mine) and old_lines[i] not in (mine[i], mine[i] + "\n") for i in range(i1, i2)
        ):
            raise NotebookError(f"a change in cell {cell.number} touches an IPython magic line")
        out.extend(new_lines[j1:j2])
    text = "".join(out)
    if not cell.text.endswith("\n") and text.endswith("\n"):
        text = text[:-1]  # the module gave the last line a newline the cell does not have
    return text


def _chunks(module: str) -> list[str]:
    return module.split(BOUNDARY)[:-1]


def write_back(nb: Notebook, new_module: str) -> str:
    """The notebook text with the rewritten module's cells; NotebookError when a changed
    cell cannot be written back byte for byte."""
    old, new = _chunks(nb.module), _chunks(new_module)
    if len(old) != len(nb.cells) or len(new) != len(nb.cells):
        raise NotebookError("the rewritten code no longer splits into the notebook's cells")
    out = nb.text
    for cell, before, after in sorted(
        zip(nb.cells, old, new), key=lambda t: t[0].source.start, reverse=True
    ):
        if before == after:
            continue
        if not cell.editable:
            raise NotebookError(f"cell {cell.number} cannot be written back byte for byte")
        new_text = _new_cell_text(cell, before, after)
        if cell.source.kind == "string":
            raw = json.dumps(new_text, ensure_ascii=cell.ensure_ascii)
        else:
            items = [json.dumps(x, ensure_ascii=cell.ensure_ascii) for x in _lines(new_text)]
            head = out[cell.source.start + 1 : cell.parts[0].start]
            tail = out[cell.parts[-1].end : cell.source.end - 1]
            raw = "[" + head + cell.separator.join(items) + tail + "]"
        out = out[: cell.source.start] + raw + out[cell.source.end :]
    return out


def verify(nb: Notebook, new_text: str, new_module: str, wanted: str) -> str | None:
    """None when the new notebook parses and gives back exactly the rewritten code, with
    as many cells as before."""
    try:
        json.loads(new_text)
        again = read(new_text, wanted)
    except (ValueError, NotebookError) as exc:
        return f"the rewritten notebook does not parse ({exc})"
    if len(again.cells) != len(nb.cells):
        return "the rewritten notebook has other cells"
    if again.module != new_module:
        return "the rewritten notebook's code is not the rewritten code"
    return None
