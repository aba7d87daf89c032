"""Safe arithmetic expressions: correct values, and every non-arithmetic construct rejected."""

import numpy as np
import pytest

from eftflow.errors import ExpressionError
from eftflow.physics.expression import ArithmeticExpression


@pytest.mark.parametrize(
    ("text", "theta", "value"),
    [
        ("theta", 2.0, 2.0),
        ("16.52*theta", 1.0, 16.52),
        ("-theta**2 + 3 % 2", 2.0, -3.0),
        ("sqrt(abs(theta)) / (1 + exp(0))", -4.0, 1.0),
        ("cos(pi * theta)", 1.0, -1.0),
    ],
)
def test_values(text, theta, value):
    assert ArithmeticExpression(text)(theta=theta) == pytest.approx(value)


def test_vectorised():
    np.testing.assert_allclose(ArithmeticExpression("2*theta")(theta=np.arange(3.0)), [0, 2, 4])


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("__import__('os')", "__import__"),
        ("theta.__class__", "theta.__class__"),
        ("(lambda: 1)()", "lambda"),
        ("[t for t in (1, 2)]", "[t for t in (1, 2)]"),
        ("open('f')", "open"),
        ("x + 1", "'x'"),
        ("theta if theta else 1", "theta if theta else 1"),
        ("theta[0]", "theta[0]"),
        ("f'{theta}'", "f'{theta}'"),
        ("True + theta", "True"),
        ("sqrt(theta, 2)", "exactly one"),
        ("1 +", "not a valid expression"),
    ],
)
def test_rejected_with_token(text, token):
    with pytest.raises(ExpressionError) as err:
        ArithmeticExpression(text)
    assert token in str(err.value)


def test_numbers_are_floats_power_towers_end_at_inf():
    # Python integers would compute 9**9**9**9 for ever and wrap int64 powers such as 10**20
    assert ArithmeticExpression("9**9**9**9", ())() == np.inf
    assert ArithmeticExpression("10**20 + 0 * theta")(theta=1.0) == 1e20
    assert ArithmeticExpression("1 / theta")(theta=0.0) == np.inf
    with pytest.raises(ExpressionError, match="too large"):
        ArithmeticExpression("1" + "0" * 400)


def test_scan_expressions_compute_in_floats():
    from eftflow.inference.scan.expressions import Expression

    assert Expression.parse("10**20")({}) == 1e20  # not a wrapped int64
    assert Expression.parse("9**9**9**9")({}) == np.inf
    with pytest.raises(ExpressionError, match="too large"):
        Expression.parse("1" + "0" * 400)
