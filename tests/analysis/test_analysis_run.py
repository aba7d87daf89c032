"""Analysis over chunks: observables, cuts, efficiencies, the event store, Dask, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from eftflow.analysis.analyse import analyse_events
from eftflow.analysis.expressions import Expression
from eftflow.analysis.objects import ObjectStore
from eftflow.analysis.observables import Analysis
from eftflow.errors import ConfigError, ExpressionError, InputError
from eftflow.store.events import EventStore

CONFIG = {
    "observables": [
        {"name": "m_ll", "definition": "(l[0] + l[1]).m", "required": True},
        {"name": "pt_l1", "definition": "l[0].pt"},
        {"name": "pt_l3", "definition": "l[2].pt", "default": -1.0},
        {"name": "ht", "definition": "sum(j.pt)"},
        {"name": "dr_jj", "definition": "deltaR(j[0], j[1])", "default": -5.0},
    ],
    "cuts": ["m_ll > 30", {"definition": "pt_l1 > 20"}],
    "efficiencies": [{"definition": "0.9 if abs(l[0].eta) < 1.2 else 0.7"}],
}


def expected(objects, weights):
    """The same analysis, written directly with expressions + numpy."""

    def ev(t, d=np.nan):
        return Expression(t).evaluate_array(objects, default=d)

    m_ll, pt1 = ev("(l[0] + l[1]).m"), ev("l[0].pt")
    keep = np.isfinite(m_ll) & (m_ll > 30) & (pt1 > 20)
    eff = np.where(np.abs(ev("l[0].eta")) < 1.2, 0.9, 0.7)
    obs = np.stack(
        [m_ll, pt1, ev("l[2].pt", -1.0), ev("sum(j.pt)"), ev("deltaR(j[0], j[1])", -5.0)], axis=1
    )
    return obs[keep], weights[keep] * eff[keep, None], keep


def test_analysis_closure_serial(object_store, dy_setup, tmp_path):
    path, objects, w = object_store
    out = tmp_path / "events.zarr"
    res = analyse_events(path, out, CONFIG, setup=dy_setup, chunk_size=700)
    obs, wt, keep = expected(objects, w)
    store = EventStore(out)
    assert store.observable_names == ["m_ll", "pt_l1", "pt_l3", "ht", "dr_jj"]
    assert store.benchmark_names == [b.name for b in dy_setup.physics_benchmarks()]
    assert store.nuisance_benchmark_names == ["lumi_nuisance_param_0_benchmark_0"]
    np.testing.assert_allclose(store.read("observables"), obs)
    np.testing.assert_allclose(store.read("weights"), wt[:, :6])
    np.testing.assert_allclose(store.read("nuisance_weights"), wt[:, 6:])
    assert np.all(store.read("sampling_benchmark") == 0)
    assert res["n_out"] == keep.sum() and res["n_in"] == 5000
    assert store.attrs["cutflow"]["input"] == 5000
    assert store.attrs["cutflow"]["pt_l1 > 20"] == keep.sum()
    assert store.provenance["stage"] == "analyse_events"


def test_analysis_with_dask_workers_matches_serial(object_store, dy_setup, tmp_path, caplog):
    import logging

    path, _, _ = object_store
    analyse_events(path, tmp_path / "a.zarr", CONFIG, setup=dy_setup, chunk_size=1000)
    with caplog.at_level(logging.INFO, logger="eftflow"):
        analyse_events(
            path,
            tmp_path / "b.zarr",
            CONFIG,
            setup=dy_setup,
            chunk_size=1000,
            threads=2,
            memory_mb=2000,
        )
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("eftflow")]
    assert messages[0].startswith("Dask dashboard: http")  # the stage's first line, and only once
    assert sum(m.startswith("Dask dashboard") for m in messages) == 1
    a, b = EventStore(tmp_path / "a.zarr"), EventStore(tmp_path / "b.zarr")
    np.testing.assert_array_equal(a.read("observables"), b.read("observables"))
    np.testing.assert_array_equal(a.read("weights"), b.read("weights"))


def test_default_observables_like_madminer(object_store, tmp_path):
    path, objects, _ = object_store
    ana = Analysis()
    ana.add_default_observables(n_leptons_max=2, n_photons_max=1, n_jets_max=2)
    names = ana.observable_names
    assert names[:4] == ["et_miss", "phi_miss", "e_visible", "eta_visible"]
    assert {
        "n_ls",
        "e_l1",
        "pt_l2",
        "eta_j1",
        "phi_j2",
        "charge_l1",
        "charge_l2",
        "n_as",
        "pt_a1",
    } <= set(names)
    res = analyse_events(path, tmp_path / "ev.zarr", ana)
    store = EventStore(tmp_path / "ev.zarr")
    assert res["n_out"] == 5000  # only MET/visible/multiplicities are required
    x = store.read("observables")
    pt_a1 = x[:, names.index("pt_a1")]
    assert np.all(pt_a1 == 0.0)  # no photons: default 0
    np.testing.assert_allclose(x[:, names.index("n_ls")], np.diff(objects["l"].offsets))


def test_all_events_fail_the_cuts(object_store, tmp_path):
    path, _, _ = object_store
    out = tmp_path / "none.zarr"
    with pytest.raises(InputError, match="all 5000 events fail the cuts"):
        analyse_events(path, out, {"observables": CONFIG["observables"], "cuts": ["m_ll > 1e6"]})
    assert not out.exists()
    assert not any(p.name.startswith(".none.zarr") for p in tmp_path.iterdir())


def test_unknown_names_are_clear_errors(object_store, tmp_path):
    path, _, _ = object_store
    out = tmp_path / "x.zarr"
    bad = {"observables": [{"name": "x", "definition": "tau[0].pt"}]}
    with pytest.raises(
        ExpressionError,
        match=r"analysis.observables\[0\].definition: 'tau' at column 1 is an unknown name",
    ):
        analyse_events(path, out, bad, config_file="cfg.yaml")
    bad = {"observables": [{"name": "x", "definition": "l[0].pt"}], "cuts": ["y > 1"]}
    with pytest.raises(
        ExpressionError, match=r"cfg.yaml: analysis.cuts\[0\].definition: 'y' at column 1"
    ):
        analyse_events(path, out, bad, config_file="cfg.yaml")
    assert not out.exists()


@pytest.mark.parametrize(
    ("section", "match"),
    [
        ({"observable": []}, "unknown key 'observable'"),
        ({"observables": [{"name": "x"}]}, "name and definition are required"),
        (
            {"observables": [{"name": "x", "definition": "l[0].pt", "deflt": 1}]},
            "unknown key 'deflt'",
        ),
        ({"observables": [{"name": "j", "definition": "l[0].pt"}]}, "clashes with an object"),
        ({"observables": [{"name": "a b", "definition": "l[0].pt"}]}, "must be an identifier"),
        ({"observables": [{"name": "x", "definition": 3}]}, "definition must be a string"),
        (
            {"observables": [{"name": "x", "definition": "1"}, {"name": "x", "definition": "2"}]},
            "duplicate",
        ),
        ({"observables": []}, "defines no observables"),
        ({"default_observables": {"n_lepton": 2}}, "unknown key 'n_lepton'"),
    ],
)
def test_config_errors(section, match):
    with pytest.raises(ConfigError, match=match):
        Analysis.from_config(section, file="cfg.yaml").compile()


@pytest.mark.parametrize("value", ["-1", "2.0", "0.5 if pt_l1 > 1e9 else 1.5", "sqrt(-1) + 0.5"])
def test_efficiency_outside_0_1_is_an_error(object_store, tmp_path, value):
    path, _, _ = object_store
    # the last one is undefined everywhere: it takes its default, which is NaN here
    effs = ["1.0", {"definition": value, "default": float("nan") if "sqrt" in value else 1.0}]
    if "sqrt" in value:
        with pytest.raises(ConfigError, match=r"default must be in \[0, 1\]") as err:
            Analysis.from_config({"efficiencies": effs}, file="cfg.yaml")
        assert err.value.field == "analysis.efficiencies[1].default"
        return
    section = {"observables": CONFIG["observables"][:2], "efficiencies": effs}
    with pytest.raises(InputError, match=r"must be in \[0, 1\], but is") as err:
        analyse_events(path, tmp_path / "n.zarr", section, config_file="cfg.yaml")
    assert err.value.file == "cfg.yaml"
    assert err.value.field == "analysis.efficiencies[1].definition"
    assert not (tmp_path / "n.zarr").exists()


@pytest.mark.parametrize(
    "section, field",
    [
        ({"efficiencies": [{"definition": "0.9", "default": -0.5}]}, "efficiencies[0].default"),
        ({"efficiencies": [{"definition": "0.9", "default": "x"}]}, "efficiencies[0].default"),
        ({"observables": [{"name": "met_x", "definition": "met.pt", "default": "x"}]}, "observables[0].default"),
        ({"observables": [{"name": "met_x", "definition": "met.pt", "required": "no"}]}, "observables[0].required"),
        ({"cuts": [{"definition": "met.pt > 1", "default_pass": "yes"}]}, "cuts[0].default_pass"),
        ({"chunk_size": -3}, "chunk_size"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"chunk_size": "abc"}, "chunk_size"),
    ],
)  # fmt: skip
def test_bad_values_name_the_key(section, field):
    with pytest.raises(ConfigError) as err:
        Analysis.from_config(section, file="cfg.yaml")
    assert err.value.file == "cfg.yaml" and err.value.field == f"analysis.{field}"


@pytest.mark.parametrize("chunk_size", [0, -3, 2.5])
def test_bad_chunk_size_argument(object_store, tmp_path, chunk_size):
    path, _, _ = object_store
    with pytest.raises(ConfigError, match=">= 1") as err:
        analyse_events(path, tmp_path / "n.zarr", CONFIG, chunk_size=chunk_size)
    assert err.value.field == "analysis.chunk_size"
    assert not (tmp_path / "n.zarr").exists()


def test_truncated_object_store(object_store, tmp_path):
    import shutil

    path, _, _ = object_store
    shutil.rmtree(path / "j" / "values")
    with pytest.raises(InputError, match="truncated"):
        ObjectStore(path)
    with pytest.raises(InputError, match="not an eftflow object store"):
        ObjectStore(tmp_path)


@pytest.mark.parametrize("chunk", ["weights/c/1/0", "sampling_benchmark/c/0", "l/values/c/0/0"])
def test_deleted_chunk_file_is_damage_not_zeros(object_store, chunk):
    # every chunk is written (the all-zero sampling ids too), so a missing file is damage
    path, _, _ = object_store
    (path / chunk).unlink()
    with pytest.raises(InputError, match="chunk files are missing") as err:
        ObjectStore(path)
    assert err.value.file == str(path) and err.value.field == chunk.split("/c/")[0]


def test_missing_benchmark_weights(object_store, dy_setup, tmp_path):
    path, _, _ = object_store
    dy_setup.benchmarks.pop("w_pos")
    with pytest.raises(InputError, match="no weights for benchmark"):
        from eftflow.analysis.analyse import benchmark_columns

        benchmark_columns(["sm"], dy_setup)


def test_distribution_plot(object_store, dy_setup, tmp_path):
    from eftflow.plotting.distributions import histogram_distributions, plot_distributions

    path, _, _ = object_store
    analyse_events(path, tmp_path / "ev.zarr", CONFIG, setup=dy_setup)
    thetas = [[0.0, 0.0], [1e-3, 0.0]]
    h = histogram_distributions(
        tmp_path / "ev.zarr", dy_setup, thetas, observables=["m_ll", "ht"], n_toys=20
    )
    store = EventStore(tmp_path / "ev.zarr")
    # at the SM the morphed weights are the sm column: total = σ_sm inside the histogram range
    x = store.read("observables")[:, 0]
    e = h["edges"]["m_ll"]
    inside = (x >= e[0]) & (x <= e[-1])
    np.testing.assert_allclose(
        h["hist"]["m_ll"][0].sum(), store.read("weights")[inside, 0].sum(), rtol=1e-9
    )
    # lumi nuisance: toys scale by 1.02**nu: the spread is ~2 %
    toys = h["toys"]["m_ll"][0].sum(axis=1) / h["hist"]["m_ll"][0].sum()
    assert 0.005 < np.std(toys) < 0.04
    out = plot_distributions(
        tmp_path / "ev.zarr",
        dy_setup,
        thetas,
        tmp_path / "dist.png",
        observables=["m_ll", "ht"],
        n_toys=20,
    )
    assert out.stat().st_size > 1000
    with pytest.raises(InputError, match="unknown observable"):
        histogram_distributions(tmp_path / "ev.zarr", dy_setup, thetas, observables=["nope"])
