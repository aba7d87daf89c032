"""Shapes of nuisance parameters from the store: up/down networks g±(x), closure against an exact
shape, the x-only input convention, and the workflow model's spec with them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eftflow.cli import main
from eftflow.errors import ConfigError, InputError
from eftflow.setup import EFTSetup

NU = "mu_var_nuisance_param_0"
KAPPA_UP, KAPPA_DOWN = 0.4, -0.2  # w± = w_sm · (1 + κ± x) per event, x ~ U(0, 1)


def _setup() -> EFTSetup:
    s = EFTSetup()
    s.add_parameter("eft", 1, "W", parameter_range=(-1e-3, 1e-3))
    s.add_benchmark({"W": 0.0}, "sm", verbose=False)
    s.add_benchmark({"W": 1e-3}, "w_pos", verbose=False)
    s.set_morphing(max_overall_power=2, seed=1)
    s.add_systematics("scale", "mu_var", scale="mu", scale_variations=(0.5, 1.0, 2.0))
    s.add_systematics("norm", "lumi", norm_variation=1.02)
    return s


@pytest.fixture(scope="module")
def shape_store(tmp_path_factory):
    """A combined store of one observable x ~ U(0, 1) whose scale nuisance has the exact shape
    g±(x) = (1 + κ± x) / (1 + κ±/2), and a lumi column (a rate only)."""
    from eftflow.store.combine import combine_events
    from eftflow.store.events import EventStoreWriter

    d = tmp_path_factory.mktemp("shapes")
    s = _setup()
    s.save(d / "setup.h5")
    n = 8000
    rng = np.random.default_rng(5)
    x = rng.uniform(0.0, 1.0, n)
    w = np.column_stack([np.full(n, 1e-3), 1e-3 * (1 + x), 1e-3 * (1 + 2 * x)])
    nuis = sorted([f"{NU}_benchmark_0", f"{NU}_benchmark_1", "lumi_nuisance_param_0_benchmark_0"])
    cols = {f"{NU}_benchmark_0": w[:, 0] * (1 + KAPPA_UP * x),
            f"{NU}_benchmark_1": w[:, 0] * (1 + KAPPA_DOWN * x),
            "lumi_nuisance_param_0_benchmark_0": 1.02 * w[:, 0]}  # fmt: skip
    names = [b.name for b in s.physics_benchmarks()]
    with EventStoreWriter(d / "raw.zarr", ["x"], names, chunk_size=1000, nuisance_names=nuis) as wr:
        wr.append(observables=x[:, None], weights=w, sampling_benchmark=np.zeros(n, np.int64),
                  nuisance_weights=np.column_stack([cols[c] for c in nuis]))  # fmt: skip
    combine_events([d / "raw.zarr"], d / "events.zarr", seed=2, setup=d / "setup.h5")
    return d


@pytest.fixture(scope="module")
def trained(shape_store):
    from eftflow.inference.model.shapes import train_nuisance_shapes

    d = shape_store
    summary = train_nuisance_shapes(
        d / "events.zarr",
        d / "setup.h5",
        d / "shapes",
        options={"n_samples": 20000, "n_epochs": 8, "hidden": [16, 16]},
        seed=4,
        plot_observables=["x"],
    )
    return d, summary


def _exact_log_g(x, kappa):
    return np.log1p(kappa * x) - np.log1p(kappa / 2)


def _check_events(d):
    """x and the nominal weights of the validation events of the store (the closure's events)."""
    from eftflow.store.combine import partition_bounds
    from eftflow.store.events import EventStore

    st = EventStore(d / "events.zarr")
    i0, i1 = partition_bounds(st, "validation")
    return st.read("observables")[i0:i1, 0], st.read("weights")[i0:i1, 0]


def test_shape_networks_learn_the_exact_shape(trained):
    import torch

    from eftflow.inference.model.shapes import _paired_chi2
    from eftflow.inference.model.unbinned import EnsembleLogRatio

    d, summary = trained
    assert list(summary["nuisances"]) == [NU]  # the lumi nuisance changes no shape: no network
    x = np.linspace(0.05, 0.95, 19)
    for side, kappa in (("up", KAPPA_UP), ("down", KAPPA_DOWN)):
        ens = EnsembleLogRatio.load(d / "shapes" / NU / side, [])
        bound = ens.bind(x[:, None], dtype=torch.float64, device=torch.device("cpu"))
        learned = bound(torch.zeros((1, 0), dtype=torch.float64)).mean(0)[0].numpy()
        exact = _exact_log_g(x, kappa)
        # the shape spans 0.33 (up) and 0.2 (down) in log g over [0, 1]
        assert np.abs(learned - exact).max() < 0.03, (side, learned - exact)
        check = summary["nuisances"][NU]["check"][side]
        assert check["rate"] == pytest.approx(1 + kappa / 2, rel=0.01)
        assert check["mean_g"] == pytest.approx(1.0, abs=0.01)
        assert check["correlation"] > 0.98  # here the joint ratio depends on x alone
        assert check["max_hist_difference"]["x"] < 0.03
        assert check["events"] == 1600  # the validation partition, unseen in training
        # paired χ²: the same events carry both weights. Here the joint ratio depends on x
        # alone, so the exact shape closes with χ² = 0 (rounding aside), and any error of the
        # network is resolvable: its χ² is large although the histograms agree to 3 %
        chi2 = check["hist_chi2"]["x"]
        assert chi2["ndf"] == 11 and np.isfinite(chi2["chi2"])
        xv, w0 = _check_events(d)
        wv = w0 * (1 + kappa * xv)
        exact_chi2 = _paired_chi2(xv, w0, _exact_log_g(xv, kappa), wv)
        assert exact_chi2["chi2"] < 1e-6 and exact_chi2["ndf"] == 11
    on_disk = json.loads((d / "shapes" / "summary.json").read_text())
    assert on_disk["nuisances"][NU]["check"] == summary["nuisances"][NU]["check"]
    prov = on_disk["provenance"]
    assert prov["stage"] == "train_nuisance_shapes" and prov["seed"] == 4
    assert len(prov["config_hash"]) == 16 and prov["inputs"][0]["stage"] == "combine_events"
    from eftflow.inspect import format_summary, inspect_path

    info = inspect_path(d / "shapes")
    assert info["kind"] == "nuisance shape networks" and info["method"] == "alice"
    assert f"{NU} up: rate ×" in format_summary(info)
    assert "worst hist. χ²/ndf " in info[f"{NU} up"] and "/11" in info[f"{NU} up"]
    assert (d / "shapes" / "shapes.png").stat().st_size > 0
    # the members name their training set where it is now (not the temporary directory)
    member = json.loads((d / "shapes" / NU / "up" / "member_0.json").read_text())
    assert member["training_set"] == str((d / "shapes" / NU / "up.zarr").resolve())
    assert not list(d.glob(".shapes*"))


def test_x_only_networks_get_the_constant_they_were_trained_at(trained):
    """A training set of fixed θ0 (here θ_ref and ν = ±1 in its columns) trains a network
    that must be fed that same constant: zeros would shift every prediction."""
    import torch

    from eftflow.inference.model.unbinned import EnsembleLogRatio

    d, _ = trained
    ens = EnsembleLogRatio.load(d / "shapes" / NU / "down", [])
    member = ens.members[0]
    mean = member.theta_scale.mean
    assert ens.n_dummy == 3 and mean.tolist() == [0.0, -1.0, 0.0]  # (W, ν_mu, ν_lumi)
    x = np.array([[0.2], [0.7]])
    got = ens.bind(x, dtype=torch.float64, device=torch.device("cpu"))(torch.zeros((3, 0)))
    assert got.shape == (1, 3, 2)
    with torch.no_grad():
        direct = member(torch.tensor(x, dtype=torch.float32), mean[None].expand(2, -1))
    np.testing.assert_allclose(got[0, 0].numpy(), direct.reshape(-1).numpy(), rtol=1e-6)
    rows = ens.bind_rows(np.stack([x, x]), dtype=torch.float64, device=torch.device("cpu"))
    np.testing.assert_allclose(
        rows(torch.zeros((2, 0)))[0, 1].numpy(), got[0, 0].numpy(), rtol=1e-6
    )


def test_updown_entries_feed_a_model_whose_nuisance_shifts_the_shape(trained):
    import torch

    from eftflow.inference.model.shapes import updown_entries
    from eftflow.inference.model.unbinned import EnsembleLogRatio, ExactLogRatio, UpDownLogRatio

    d, _ = trained
    entries = updown_entries(d / "shapes", observables=["x"], relative_to=d)
    assert entries == {NU: {"up": f"shapes/{NU}/up", "down": f"shapes/{NU}/down"}}
    with pytest.raises(InputError, match="takes the observables") as err:
        updown_entries(d / "shapes", observables=["m_ll"])
    assert err.value.field == "observable_names"
    var = {NU: tuple(EnsembleLogRatio.load(d / e, []) for e in entries[NU].values())}
    nominal = ExactLogRatio(lambda x, p: torch.zeros((p.shape[0], x.shape[0])), ["W"])
    prov = UpDownLogRatio(nominal, var)
    x = np.array([[0.1], [0.9]])
    out = prov.bind(x, dtype=torch.float64, device=torch.device("cpu"))(
        torch.tensor([[0.0, 1.0], [0.0, -1.0], [0.0, 0.0]], dtype=torch.float64)
    )[0].numpy()
    np.testing.assert_allclose(out[2], 0.0, atol=1e-12)  # ν = 0: no change
    # ν = ±1: the events move as the exact shape says (large x up for ν = +1, down for −1)
    np.testing.assert_allclose(out[0], _exact_log_g(x[:, 0], KAPPA_UP), atol=0.03)
    np.testing.assert_allclose(out[1], _exact_log_g(x[:, 0], KAPPA_DOWN), atol=0.03)


def test_demo_spec_puts_the_networks_next_to_the_rate(trained, monkeypatch):
    from eftflow.inference.model import demo

    d, _ = trained
    info = {"method": "alices", "observables": ["x"], "parameters": ["W"], "n_parameters": 1,
            "training_set": None}  # fmt: skip
    monkeypatch.setattr(demo, "ensemble_training_info", lambda e: info)
    spec = demo.write_demo_spec(
        d / "spec" / "demo.yaml",
        store=d / "events.zarr",
        setup=d / "setup.h5",
        ensemble=d / "shapes",  # any directory: its training info is the stub above
        options={"n_toys": 0},
        nuisance_shapes=d / "shapes",
    )
    (proc,) = spec["unbinned"][0]["processes"]
    assert proc["updown"] == {NU: {"up": f"../shapes/{NU}/up", "down": f"../shapes/{NU}/down"}}
    hi, lo = proc["normsys"][NU]
    assert hi == pytest.approx(1 + KAPPA_UP / 2, rel=0.01)
    assert lo == pytest.approx(1 + KAPPA_DOWN / 2, rel=0.01)
    assert proc["normsys"]["lumi_nuisance_param_0"] == pytest.approx([1.02, 1 / 1.02])
    assert "updown:" in (d / "spec" / "demo.yaml").read_text()


def test_bad_options_are_refused_and_stores_without_shapes_get_none(shape_store, tmp_path, capsys):
    from eftflow.inference.model.shapes import load_shapes, train_nuisance_shapes, updown_entries

    d = shape_store
    with pytest.raises(InputError, match="no shape nuisance parameter") as err:
        train_nuisance_shapes(d / "events.zarr", d / "setup.h5", tmp_path / "o",
                              nuisances=["lumi_nuisance_param_0"])  # fmt: skip
    assert err.value.field == "nuisances"
    with pytest.raises(InputError, match="'nope' is no shape nuisance"):  # from the options
        train_nuisance_shapes(d / "events.zarr", d / "setup.h5", tmp_path / "o",
                              options={"nuisances": ["nope"]})  # fmt: skip
    for bad, field in (({"method": "sally"}, "method"), ({"n_samples": 0}, "n_samples"),
                       ({"check_partition": "train"}, "check_partition"),
                       ({"epochs": 3}, ""), ({"nuisances": NU}, "nuisances")):  # fmt: skip
        with pytest.raises(ConfigError) as err:
            train_nuisance_shapes(d / "events.zarr", d / "setup.h5", tmp_path / "o", options=bad)
        assert err.value.field.startswith("model.demo.nuisance_shapes") and field in err.value.field
    assert not (tmp_path / "o").exists()
    with pytest.raises(InputError, match="no summary.json"):
        load_shapes(tmp_path)
    # a setup with only a norm systematic: nothing to train, a warning and an empty summary
    # (as the analysis warns about nuisance weights it lacks); the spec then has no updown
    from eftflow.store.events import EventStoreWriter

    s = EFTSetup()
    s.add_parameter("eft", 1, "W", parameter_range=(-1e-3, 1e-3))
    s.add_benchmark({"W": 0.0}, "sm", verbose=False)
    s.add_benchmark({"W": 1e-3}, "w_pos", verbose=False)
    s.set_morphing(max_overall_power=2, seed=1)
    s.add_systematics("norm", "lumi", norm_variation=1.02)
    s.save(tmp_path / "flat.h5")
    w = np.full((100, 3), 1e-3)
    with EventStoreWriter(tmp_path / "flat.zarr", ["x"], [b.name for b in s.physics_benchmarks()],
                          nuisance_names=["lumi_nuisance_param_0_benchmark_0"]) as wr:  # fmt: skip
        wr.append(observables=np.ones((100, 1)), weights=w, nuisance_weights=1.02 * w[:, :1])
    args = ["train-nuisance-shapes", str(tmp_path / "flat.zarr"), "--setup",
            str(tmp_path / "flat.h5"), "-o", str(tmp_path / "o")]  # fmt: skip
    assert main(args) == 0
    assert "nothing to train" in capsys.readouterr().err
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["nuisances"] == {}
    assert updown_entries(tmp_path / "o", observables=["x"]) == {}


def test_cli_writes_the_directory_the_spec_writer_takes(shape_store, tmp_path, capsys):
    d = shape_store
    cfg = json.dumps({"seed": 3, "model": {"demo": {"nuisance_shapes": {
        "n_samples": 2000, "n_epochs": 1, "hidden": [8], "check_events": 1500}}}})  # fmt: skip
    out = tmp_path / "shapes"
    args = ["train-nuisance-shapes", str(d / "events.zarr"), "--setup", str(d / "setup.h5"),
            "-o", str(out), "--config", cfg, "--plot-observables", "x", "nope"]  # fmt: skip
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 3 and summary["options"]["n_epochs"] == 1
    assert summary["figure"] == "shapes.png" and (out / "shapes.png").is_file()
    assert set(summary["nuisances"][NU]["check"]["up"]["max_hist_difference"]) == {"x"}
    assert summary["nuisances"][NU]["check"]["down"]["events"] == 1500  # of 1600, over 2 chunks
    bad = json.dumps({"model": {"demo": {"nuisance_shapes": {"n_epochs": 0}}}})
    assert main([*args[:5], str(tmp_path / "b"), "--config", bad]) == 2
    assert "nuisance_shapes" in capsys.readouterr().err and not (tmp_path / "b").exists()
