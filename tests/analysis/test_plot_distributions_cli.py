"""``eftflow plot-distributions``: the figure from an event store, the toys' band from every
nuisance parameter the store has weights for, and one-line errors for mistaken arguments."""

from __future__ import annotations

import numpy as np
import pytest

from eftflow.cli import main
from eftflow.plotting.distributions import histogram_distributions
from eftflow.setup import EFTSetup
from eftflow.store.events import EventStoreWriter

NU = "mu_var_nuisance_param_0"


@pytest.fixture
def store(tmp_path):
    s = EFTSetup()
    s.add_parameter("eft", 1, "W", parameter_range=(-1.0, 1.0))
    s.add_benchmark({"W": 0.0}, "sm", verbose=False)
    s.add_benchmark({"W": 1.0}, "w_pos", verbose=False)
    s.set_morphing(max_overall_power=2, seed=1)
    s.add_systematics("scale", "mu_var", scale="mu", scale_variations=(0.5, 1.0, 2.0))
    s.add_systematics("norm", "lumi", norm_variation=1.1)
    s.save(tmp_path / "setup.h5")
    rng = np.random.default_rng(3)
    n = 3000
    x = rng.uniform(0.0, 1.0, n)
    w = np.column_stack([np.ones(n), 1 + x, 1 + 3 * x]) / n  # sm, w_pos, the basis point
    names = [b.name for b in s.physics_benchmarks()]
    # only the scale weights: the lumi parameter is left out of the band
    nuis = [f"{NU}_benchmark_0", f"{NU}_benchmark_1"]
    nw = np.column_stack([w[:, 0] * (1 + 0.3 * x), w[:, 0] * (1 - 0.2 * x)])
    path = tmp_path / "ev.zarr"
    with EventStoreWriter(path, ["x", "y"], names, chunk_size=1000, nuisance_names=nuis) as wr:
        wr.append(observables=np.column_stack([x, 2 * x]), weights=w, nuisance_weights=nw,
                  sampling_benchmark=np.zeros(n, np.int64))  # fmt: skip
    return path, s


def test_cli_draws_benchmarks_and_points(store, tmp_path):
    path, setup = store
    out = tmp_path / "plots" / "dist.png"
    code = main(["plot-distributions", str(path), "--setup", str(tmp_path / "setup.h5"),
                 "-o", str(out), "--benchmarks", "sm", "w_pos", "--theta", "[0.5]",
                 "--observables", "x", "--n-toys", "20"])  # fmt: skip
    assert code == 0 and out.read_bytes()[:4] == b"\x89PNG"
    h = histogram_distributions(path, setup, [[0.0], [1.0]], observables=["x"], n_toys=200)
    assert h["nuisances"] == [NU]  # the lumi parameter has no weights in the store
    # σ(w_pos) = Σ (1 + x)/n ≈ 1.5: the morphed histogram at θ = 1 is the w_pos column
    assert h["hist"]["x"][1].sum() == pytest.approx(1.5, rel=0.02)
    # the band follows the shape: at large x the scale toys spread more than at small x
    toys = h["toys"]["x"][0] / h["hist"]["x"][0]
    spread = toys.std(axis=0)
    assert spread[-1] > 3 * spread[0]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--benchmarks", "nope"], "--benchmarks: unknown benchmark 'nope'"),
        (["--theta", "[1, 2]"], "--theta: '[1, 2]': expected a list of 1 numbers (W)"),
        (["--theta", "{x"], "--theta: '{x' is not JSON"),
        (["--observables", "z"], "observables: unknown observable(s) z"),
        (["--n-toys", "0"], "--n-toys"),
    ],
)
def test_mistakes_are_one_line_errors(store, tmp_path, capsys, extra, message):
    path, _ = store
    out = tmp_path / "d.png"
    args = ["plot-distributions", str(path), "--setup", str(tmp_path / "setup.h5"), "-o", str(out)]
    try:
        code = main(args + extra)
    except SystemExit as exit_:  # argparse's own errors (exit status 2 as ours)
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and message in err
    assert not out.exists()


def test_output_equal_to_the_store_is_refused(store, tmp_path, capsys):
    path, _ = store
    assert main(["plot-distributions", str(path), "--setup", str(tmp_path / "setup.h5"),
                 "-o", str(path)]) == 2  # fmt: skip
    assert "the output path is the input 'store'" in capsys.readouterr().err
    assert (path / "zarr.json").is_file()
