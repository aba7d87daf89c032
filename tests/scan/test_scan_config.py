"""Bad scan files: clear errors naming file and key, and no output left behind."""

import pytest

from eftflow.errors import ConfigError, ExpressionError
from eftflow.inference.scan import run_scan

GOOD = """\
models:
  M:
    parameters:
      x: {prior: flat, range: [-1, 1]}
components:
  l: {function: loglike_expression, options: {expr: "-x**2"}}
scanner: {name: random, options: {n_points: 10}}
"""


@pytest.mark.parametrize(
    ("old", "new", "error", "field", "words"),
    [
        ("models:", "models: [\n", ConfigError, "line", "YAML"),
        ("scanner:", "scannr:", ConfigError, "scannr", "unknown key"),
        (
            "{prior: flat, range: [-1, 1]}",
            "{prior: flat, range: [-1, 1], rnage: 2}",
            ConfigError,
            "models.M.parameters.x.rnage",
            "unknown key",
        ),
        ("prior: flat", "prior: cauchy", ConfigError, "models.M.parameters.x.prior", "cauchy"),
        (
            "range: [-1, 1]",
            "range: [1, -1]",
            ConfigError,
            "models.M.parameters.x.range",
            "lower < upper",
        ),
        (
            "prior: flat, range: [-1, 1]",
            "prior: log, range: [-1, 1]",
            ConfigError,
            "models.M.parameters.x.range",
            "positive",
        ),
        (
            "prior: flat, range: [-1, 1]",
            "prior: gaussian, mean: 0",
            ConfigError,
            "models.M.parameters.x.sigma",
            "missing",
        ),
        (
            "function: loglike_expression",
            "function: nosuchform",
            ConfigError,
            "components.l.function",
            "unknown component",
        ),
        (
            "function: loglike_expression",
            "function: 'os:system'",
            ConfigError,
            "components.l.function",
            "not registered",
        ),
        (
            'expr: "-x**2"',
            "expr: \"__import__('os').system('true')\"",
            ExpressionError,
            "components.l.options.expr",
            "__import__",
        ),
        (
            'expr: "-x**2"',
            'expr: "x.__class__"',
            ExpressionError,
            "components.l.options.expr",
            "__class__",
        ),
        (
            "name: random",
            "name: simulated_annealing",
            ConfigError,
            "scanner.name",
            "unknown scanner",
        ),
        ("n_points: 10", "n_points: -3", ConfigError, "scanner.options.n_points", "minimum"),
        ("n_points: 10", "npoints: 10", ConfigError, "scanner.options.npoints", "unknown key"),
    ],
)
def test_bad_scan_file(tmp_path, old, new, error, field, words):
    path = tmp_path / "scan.yaml"
    assert old in GOOD
    path.write_text(GOOD.replace(old, new, 1))
    out = tmp_path / "out"
    with pytest.raises(error) as err:
        run_scan(path, output=out)
    msg = str(err.value)
    assert str(path) in msg and field in msg and words in msg, msg
    assert not out.exists()


def test_derived_parameter_with_import_rejected(tmp_path):
    path = tmp_path / "scan.yaml"
    path.write_text(
        GOOD.replace(
            "x: {prior: flat, range: [-1, 1]}",
            "x: {prior: flat, range: [-1, 1]}\n      z: {prior: derived, expr: \"__import__('os')\"}",
        )
    )
    with pytest.raises(ExpressionError, match=r"models\.M\.parameters\.z\.expr.*__import__"):
        run_scan(path, output=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_derived_parameter_cycle(tmp_path):
    path = tmp_path / "scan.yaml"
    path.write_text(
        GOOD.replace(
            "x: {prior: flat, range: [-1, 1]}",
            "x: {prior: flat, range: [-1, 1]}\n      a: {prior: derived, expr: b}\n      b: {prior: derived, expr: a}",
        )
    )
    with pytest.raises(ConfigError, match="circular"):
        run_scan(path, output=tmp_path / "out")


def test_existing_output_needs_resume_or_force(tmp_path):
    path = tmp_path / "scan.yaml"
    path.write_text(GOOD)
    run_scan(path, output=tmp_path / "out")
    with pytest.raises(ConfigError, match="--resume"):
        run_scan(path, output=tmp_path / "out")
    assert run_scan(path, output=tmp_path / "out", force=True).n_points == 10
