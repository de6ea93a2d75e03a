"""The finder's line index: where lines begin, and which lines hold a word, searched over
the whole text (no loop over every line). It must agree with splitting the lines the way
the tokenizer does."""

from __future__ import annotations

import re

import pytest

from codemod.discover.prefilter import NEEDLES
from codemod.recorder._ddp_codemod_source import source_lines
from codemod.sites.python import line_starts, lines_holding

TEXTS = [
    "",
    "\n",
    "x = 1",
    "a\nfind_unused_parameters=True\n\nb find_unused_param find_unused_param\n",
    "a\r\nfind_unused_parameters=True\rb\nFIND-UNUSED-PARAM\r\n",
    "\u0130 \u212a find_unused_param\nTrainer(strategy='ddp')\n",  # lower() changes lengths
    "no\x0cform feed\x0bsplit\u2028here find_unused_param\n",
]


@pytest.mark.parametrize("text", TEXTS)
def test_line_starts_match_the_tokenizer_split(text: str) -> None:
    expected = [0, *(m.end() for m in re.finditer(r"\r\n|\r|\n", text))]
    assert line_starts(text) == expected
    assert len(line_starts(text)) == len(source_lines(text))


@pytest.mark.parametrize("text", TEXTS)
def test_lines_holding_match_a_test_of_each_line(text: str) -> None:
    lowered = text.lower()
    got = lines_holding(lowered, line_starts(lowered), NEEDLES)
    lines = source_lines(text)
    assert got == {n for n, line in enumerate(lines, 1) if any(w in line.lower() for w in NEEDLES)}
    words = ("Trainer", "ddp")
    got = lines_holding(text, line_starts(text), words)
    assert got == {n for n, line in enumerate(lines, 1) if any(w in line for w in words)}
