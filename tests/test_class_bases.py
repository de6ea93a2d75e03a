"""`class_bases` finds the bases of class statements on bytes, the way a line-anchored
regex did (it is led by the literal `class` now, which is several times faster)."""

from __future__ import annotations

from codemod.sites.subclasses import class_bases


def test_statements_at_any_indent() -> None:
    data = b"class A(DDP):\n    class B(nn.Module, Mixin):\n\tclass C (x.Y) :\n"
    assert class_bases(data) == [b"DDP", b"nn.Module, Mixin", b"x.Y"]


def test_the_word_class_elsewhere_is_not_a_statement() -> None:
    data = b"x = myclass A(B)\n# a subclass A(B)\n'''class C(D)'''\nsubclass E(F)\n"
    assert class_bases(data) == []


def test_a_non_statement_match_does_not_swallow_the_next_statement() -> None:
    """`# subclass Foo(` spans up to the next `)`: the class statement inside that span is
    still found."""
    data = b"# subclass Foo(\nclass Bar(DistributedDataParallel):\n    pass\n"
    assert class_bases(data) == [b"DistributedDataParallel"]


def test_bases_over_several_lines() -> None:
    data = b"class A(\n    DDP,\n    Mixin,\n):\n"
    assert class_bases(data) == [b"\n    DDP,\n    Mixin,\n"]
