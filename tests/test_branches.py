"""The branch analysis of recorded forward code (codemod.evidence.branches), on ast sources."""

from __future__ import annotations

import textwrap

from codemod.evidence.branches import Branch, RepoFacts, analyse_source, repo_facts

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


def facts_of(tmp_path, files: dict[str, str]) -> RepoFacts:
    for name, source in files.items():
        (tmp_path / name).write_text(textwrap.dedent(source))
    return repo_facts(tmp_path)


CONV = """\
class Net:
    def __init__(self, norm=True):
        self.conv = Conv()
        if norm:
            self.bn = BN()
        self.with_norm = norm
    def forward(self, x):
        x = self.conv(x)
        if self.with_norm:
            x = self.bn(x)
        return x
"""


def test_a_flag_another_class_sets_on_its_own_instances_stays_fixed_by_config(tmp_path):
    # DAMO-YOLO: DepthwiseConv.__init__ sets `self.with_norm` too; that is its own instances
    other = "class DepthwiseConv:\n    def __init__(self, norm):\n        self.with_norm = norm\n"
    facts = facts_of(tmp_path, {"m.py": CONV, "other.py": other})
    b = only(found(CONV, ["conv", "bn"], executed={3, 4, 5, 6, 8, 9, 11}, facts=facts))
    assert not b.risky and b.line == 9 and "set by the class" in b.why


def test_a_flag_a_base_class_in_another_file_sets_is_fixed_by_config(tmp_path):
    source = CONV.replace("class Net:", "class Net(Base):").replace(
        "        self.with_norm = norm\n", ""
    )
    base = "class Base:\n    def setup(self, norm):\n        self.with_norm = norm\n"
    facts = facts_of(tmp_path, {"m.py": source, "base.py": base})
    b = only(found(source, ["conv", "bn"], executed={3, 4, 5, 7, 8, 10}, facts=facts))
    assert not b.risky and "set by the class" in b.why


def test_a_flag_only_a_subclass_sets_is_fixed_by_config(tmp_path):
    source = CONV.replace("        self.with_norm = norm\n", "")
    sub = "class LiteNet(Net):\n    def __init__(self):\n        self.with_norm = False\n"
    facts = facts_of(tmp_path, {"m.py": source, "sub.py": sub})
    b = only(found(source, ["conv", "bn"], executed={3, 4, 5, 7, 8, 10}, facts=facts))
    assert not b.risky and "or a base or subclass" in b.why
    assert only(found(source, ["conv", "bn"], executed={3, 4, 5, 7, 8, 10})).risky


def test_a_flag_set_on_an_instance_from_outside_or_by_a_function_stays_a_risk(tmp_path):
    train = "def hook(model):\n    model.with_norm = False\n"
    facts = facts_of(tmp_path, {"m.py": CONV, "train.py": train})
    b = only(found(CONV, ["conv", "bn"], executed={3, 4, 5, 6, 8, 9, 11}, facts=facts))
    assert b.risky and "assigned outside the class (train.py:2)" in b.why
    loose = "def patch(self):\n    self.with_norm = False\n"  # a function, not a method
    (tmp_path / "loose").mkdir()
    facts = facts_of(tmp_path / "loose", {"m.py": CONV, "train.py": loose})
    b = only(found(CONV, ["conv", "bn"], executed={3, 4, 5, 6, 8, 9, 11}, facts=facts))
    assert b.risky


TEACHER = """\
class Net:
    def forward(self, x, tea=False):
        y = self.neck(x)
        if tea:
            return y
        return self.head(y)
"""


def test_a_keyword_passed_only_under_no_grad_leaves_the_argument_at_its_default(tmp_path):
    # DAMO-YOLO's trainer: `with torch.no_grad(): self.tea_model(inps, targets, tea=True)`;
    # DDP prepares no reduction for a forward without grad, so that call cannot skip one
    train = """\
    import torch
    def step(model, teacher, x):
        with torch.no_grad():
            t = teacher(x, tea=True)
        return model(x)
    @torch.inference_mode()
    def evaluate(model, x):
        return model(x, tea=True)
    """
    facts = facts_of(tmp_path, {"m.py": TEACHER, "train.py": train})
    b = only(found(TEACHER, ["neck", "head"], executed={3, 4, 6}, facts=facts))
    assert not b.risky and "default" in b.why


def test_a_keyword_passed_with_grad_enabled_is_a_risk(tmp_path):
    train = """\
    import torch
    def step(model, x, epoch):
        with torch.no_grad():
            def later(y):  # defined under no_grad, called with grad
                return model(y, tea=True)
        with torch.set_grad_enabled(True):
            return later(x)
    """
    facts = facts_of(tmp_path, {"m.py": TEACHER, "train.py": train})
    b = only(found(TEACHER, ["neck", "head"], executed={3, 4, 6}, facts=facts))
    assert b.risky and "passed by some call" in b.why
