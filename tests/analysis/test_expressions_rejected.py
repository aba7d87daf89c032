"""Everything outside the expression language is rejected, naming the offending token and column."""

from __future__ import annotations

import pytest

from eftflow.analysis.expressions import Expression
from eftflow.analysis.observables import Analysis
from eftflow.errors import ExpressionError

# (expression, token that must appear in the message)
REJECTED = [
    ("__import__('os')", "'__import__' at column 1"),
    ("__import__('os').system('ls')", "only functions called by name"),
    ("l[0].__class__", "'__class__' at column 6"),
    ("l[0].__class__.__bases__", "'__bases__' at column 16"),
    ("met.__dict__", "'__dict__' at column 5"),
    ("().__class__", "'__class__'"),
    ("lambda: 1", "lambda"),
    ("(lambda x: x)(1)", "lambda"),
    ("[x for x in l]", "comprehension"),
    ("sum(x.pt for x in j)", "generator expression"),
    ("{x: 1 for x in j}", "comprehension"),
    ("f'{l}'", "f-string"),
    ("(x := 1)", "':='"),
    ("l[0:2].pt", "'0:2' at column 3"),
    ("l[::-1][0].pt", "slice"),
    ("l[n_l].pt", "'n_l' at column 3"),
    ("open('x')", "'open' at column 1"),
    ("eval('1')", "'eval' at column 1"),
    ("getattr(l, 'pt')", "'getattr'"),
    ("globals()", "'globals'"),
    ("'abc'", "only numbers"),
    ("sqrt(x=1)", "'x' at column 6"),
    ("sqrt(*j)", "starred"),
    ("l[0].foo", "'foo' at column 6"),
    ("tau[0].pt", "'tau' at column 1"),
    ("l[0].pt.real", "'real' at column 9"),
    ("l + 1", "collection"),
    ("l[0]", "is an object"),
    ("j.pt", "list per event"),
    ("l.pt + j.pt", "mixes lists"),
    ("[1, 2]", "list"),
    ("l[0].pt +", "syntax error at column"),
    ("l[0].pt if", "syntax error"),
    ("sqrt", "is a function"),
    ("deltaR(l[0].pt, j[0])", "must be an object"),
    ("l[0] * 2", "objects can only be added"),
    ("1 << 2", "LShift"),
    ("1 in j", "In"),
]


@pytest.mark.parametrize(("text", "token"), REJECTED)
def test_rejected_with_token(text, token):
    with pytest.raises(ExpressionError) as info:
        Expression(text, source=("config.yaml", "analysis.observables[3].definition"))
    msg = str(info.value)
    assert token in msg, msg
    assert msg.startswith("config.yaml: analysis.observables[3].definition:")


def test_unknown_observable_name_in_cut():
    ana = Analysis(source_file="c.yaml")
    ana.add_observable("m_ll", "(l[0] + l[1]).m")
    ana.add_cut("m_lll > 50")
    with pytest.raises(
        ExpressionError,
        match=r"c.yaml: analysis.cuts\[0\].definition: 'm_lll' at column 1 is an unknown name",
    ):
        ana.compile()


def test_observable_cannot_use_a_later_one():
    ana = Analysis()
    ana.add_observable("a1", "a2 + 1")
    ana.add_observable("a2", "met.pt")
    with pytest.raises(ExpressionError, match="'a2' at column 1 is an unknown name"):
        ana.compile()


def test_collection_not_in_store_schema():
    schema = {"l": {"fields": ["pt", "eta", "phi", "m", "e", "charge"], "single": False}}
    with pytest.raises(ExpressionError, match="'j' at column 1 is an unknown name"):
        Expression("j[0].pt", schema=schema)
