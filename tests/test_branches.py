"""The branch analysis of recorded forward code (codemod.evidence.branches), on ast sources."""

from __future__ import annotations

import textwrap

from codemod.evidence.branches import Branch, RepoFacts, analyse_source

NO_FACTS = RepoFacts({}, frozenset())


def found(source: str, params: list[str], executed: set[int] | None = None, facts=NO_FACTS):
    text = textwrap.dedent(source)
    modules = [{"class": "Net", "line": 0, "params": params}]
    every = set(range(1, len(text.splitlines()) + 1)) if executed is None else executed
    return analyse_source(text, "m.py", modules, every, facts)


def only(branches: list[Branch]) -> Branch:
    assert len(branches) == 1, branches
    return branches[0]


EARLY_RETURN = """\
class Net:
    def forward(self, x, boxes):
        y = self.body(x)
        if boxes.numel() == 0:
            return y
        return y + self.box_head(boxes)
"""


def test_an_untaken_early_return_on_tensor_values_is_a_risk():
    b = only(found(EARLY_RETURN, ["body", "box_head"], executed={3, 4, 6}))
    assert (b.line, b.condition, b.skips, b.risky) == (
        5,
        "if boxes.numel() == 0:",
        ("box_head",),
        True,
    )
    assert "tensor values" in b.why


def test_a_taken_arm_is_no_finding():
    assert found(EARLY_RETURN, ["body", "box_head"], executed={3, 4, 5, 6}) == []


def test_layerdrop_continue_on_a_random_draw_is_a_risk():
    source = """\
    class Net:
        def forward(self, x):
            for layer in self.layers:
                if self.training and random.random() < self.p:
                    continue
                x = layer(x)
            return self.head(x)
    """
    # layers is one parameter attribute; `continue` skips nothing but the loop body
    b = only(found(source, ["layers", "head"], executed={3, 4, 6, 7}))
    assert b.line == 5 and b.risky and b.skips == ("layers",)
    assert b.why.startswith("a random draw")


def test_training_and_grad_mode_never_count():
    source = """\
    class Net:
        def forward(self, x):
            if not self.training:
                return self.a(x)
            if torch.is_grad_enabled():
                x = self.b(x)
            return self.a(x)
    """
    assert found(source, ["a", "b"], executed={3, 5, 6, 7}) == []


def test_a_flag_set_only_in_init_is_fixed_by_config():
    source = """\
    class Net:
        def __init__(self, with_aux=False):
            self.with_aux = with_aux
        def forward(self, x):
            y = self.a(x)
            if self.with_aux:
                y = y + self.aux(x)
            return y
    """
    b = only(found(source, ["a", "aux"], executed={3, 5, 6, 7, 8}))
    assert not b.risky and b.skips == ("aux",)
    assert "set by the class itself" in b.why


def test_a_flag_assigned_outside_the_class_is_a_risk():
    source = """\
    class Net:
        def __init__(self):
            self.frozen = False
        def forward(self, x):
            if self.frozen:
                return x
            return self.head(x)
    """
    facts = RepoFacts({"frozen": (("train.py", 9, "", False),)}, frozenset())
    b = only(found(source, ["head"], executed={3, 5, 7}, facts=facts))
    assert b.risky and "assigned outside the class (train.py:9)" in b.why


def test_a_counter_is_a_risk():
    source = """\
    class Net:
        def forward(self, x):
            self.iter += 1
            if self.iter > 1000:
                return self.a(x)
            return self.a(x) + self.b(x)
    """
    b = only(found(source, ["a", "b"], executed={3, 4, 6}))
    assert b.risky and "counter" in b.why


def test_arms_that_reach_the_same_parameters_are_no_finding():
    source = """\
    class Net:
        def forward(self, x):
            if x.sum() > 0:
                x = self.act(self.a(x))
            else:
                x = self.a(x)
            return x
    """
    assert found(source, ["a"], executed={3, 4, 7}) == []


def test_an_argument_left_at_its_default_is_fixed_and_a_passed_one_a_risk():
    source = """\
    class Net:
        def forward(self, x, with_head=True):
            if with_head:
                return self.head(self.a(x))
            return self.a(x)
    """
    fixed = only(found(source, ["a", "head"], executed={3, 4}))
    assert not fixed.risky and "default" in fixed.why
    passed = RepoFacts({}, frozenset({"with_head"}))
    risky = only(found(source, ["a", "head"], executed={3, 4}, facts=passed))
    assert risky.risky and "passed by some call" in risky.why


def test_an_untaken_except_arm_is_a_risk():
    source = """\
    class Net:
        def forward(self, x):
            try:
                return self.a(x) + self.b(x)
            except RuntimeError:
                return self.a(x)
    """
    b = only(found(source, ["a", "b"], executed={3, 4}))
    assert b.risky and b.condition == "except RuntimeError:" and b.skips == ("b",)


def test_a_helper_method_it_calls_is_analysed_too():
    source = """\
    class Net:
        def forward(self, x, targets):
            return self.losses(self.a(x), targets)
        def losses(self, y, targets):
            if len(targets) == 0:
                return y.sum() * 0
            return self.cls_head(y).sum()
    """
    b = only(found(source, ["a", "cls_head"], executed={3, 5, 7}))
    assert b.line == 6 and b.skips == ("cls_head",) and b.risky
