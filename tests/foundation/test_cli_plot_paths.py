"""``--plot``: a figure file for one-figure commands, or a directory (fixed file name in it);
commands with several figures refuse a file name before any work."""

from __future__ import annotations

import json

import pytest

from eftflow.cli import main
from eftflow.cli.common import plot_directory, plot_file
from eftflow.errors import ConfigError

COUNTING = {"kind": "counting", "counting": {"signal": 5.0, "background": 10.0, "observed": 12}}


def test_plot_file_and_directory_rules(tmp_path):
    assert plot_file(str(tmp_path / "a.PDF"), "x.png") == tmp_path / "a.PDF"
    assert plot_file(str(tmp_path / "plots"), "x.png") == tmp_path / "plots" / "x.png"
    assert plot_directory("plots") == "plots"
    with pytest.raises(ConfigError, match="figure file name") as err:
        plot_directory("fit.png")
    assert err.value.field == "--plot"


@pytest.mark.parametrize("target", ["limits.pdf", "plots"])
def test_compute_limits_plot_file_or_directory(tmp_path, target):
    spec = tmp_path / "counting.json"
    spec.write_text(json.dumps(COUNTING))
    out = tmp_path / "limits.json"
    assert (
        main(["compute-limits", str(spec), "-o", str(out), "--plot", str(tmp_path / target)]) == 0
    )
    figure = tmp_path / target if target.endswith(".pdf") else tmp_path / target / "limits.png"
    assert figure.is_file() and figure.stat().st_size > 0


def test_fit_refuses_a_figure_file_before_fitting(tmp_path, capsys):
    out = tmp_path / "fit.json"
    spec = tmp_path / "missing.yaml"  # never read: the --plot check comes first
    assert main(["fit", str(spec), "-o", str(out), "--plot", str(tmp_path / "fit.png")]) == 2
    err = capsys.readouterr().err
    assert "--plot" in err and "several figures" in err and "missing.yaml" not in err
    assert not out.exists() and not (tmp_path / "fit.png").exists()


def test_setup_plot_into_a_directory(tmp_path):
    from pathlib import Path

    config = Path(__file__).resolve().parents[2] / "config" / "examples" / "toy.yaml"
    out = tmp_path / "setup.h5"
    assert main(["setup", "--config", str(config), "-o", str(out), "--plot", str(tmp_path)]) == 0
    assert (tmp_path / "morphing_basis.png").stat().st_size > 1000
