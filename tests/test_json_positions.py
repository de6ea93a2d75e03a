"""The positional JSON parser agrees with the standard library on strings, and refuses
what strict JSON refuses (it now scans strings with json's own C scanner)."""

from __future__ import annotations

import json

import pytest

from codemod.sites.json_files import JsonError, parse

GOOD = [
    r'"plain"',
    r'"esc \" \\ \/ \b \f \n \r \t"',
    r'"\u00e9\ud83d\ude00 caf\u00e9"',
    '"caf\u00e9 \u4e2d"',
    '{"a": ["x", "y\\n", {"b": "c"}], "d": "e"}',
]


@pytest.mark.parametrize("text", GOOD)
def test_strings_decode_like_json(text: str) -> None:
    node = parse(text)
    assert _value(node) == json.loads(text)
    assert (node.start, node.end) == (0, len(text))


def test_string_positions_cover_the_quotes() -> None:
    text = '{"key": "va\\"lue"}'
    key, value = parse(text).items[0]
    assert text[key.start : key.end] == '"key"'
    assert text[value.start : value.end] == '"va\\"lue"'


@pytest.mark.parametrize(
    "text", ['"open', '"bad \\x escape"', '"tab\there"', '"\\u12"', '{"a\n": 1}']
)
def test_invalid_strings_are_refused(text: str) -> None:
    with pytest.raises(JsonError):
        parse(text)


def _value(node):  # the plain value of a parsed node
    if node.kind == "object":
        return {k.value: _value(v) for k, v in node.items}
    if node.kind == "array":
        return [_value(v) for v in node.items]
    return node.value
