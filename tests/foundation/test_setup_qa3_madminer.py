"""Setup, morphing and nuisance morphing against MadMiner itself; bad setup files."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from eftflow.errors import InputError
from eftflow.physics.morphing import Morpher, find_components
from eftflow.physics.nuisance import nuisance_coefficients, nuisance_factor_gradients
from eftflow.setup import EFTSetup

madminer = pytest.importorskip("madminer")  # at collection: its imports warn (uproot3)
from madminer.models import NuisanceParameter  # noqa: E402
from madminer.utils.interfaces.hdf5 import load_madminer_settings  # noqa: E402
from madminer.utils.morphing import NuisanceMorpher, PhysicsMorpher  # noqa: E402


@pytest.mark.parametrize(
    "powers, overall, ranges",
    [
        ([2, 2], 2, [(-1, 1), (-2, 3)]),
        ([4, 4], 4, [(-1, 1), (-1, 1)]),
        ([2, 2, 2], 2, [(-1, 1)] * 3),
        ([4, 2], 4, [(-5, 5), (-1, 1)]),
        ([3], 3, [(-1e-3, 2e-3)]),
    ],
)
def test_morphing_equals_physics_morpher(powers, overall, ranges):
    """Components, matrix, weights and weight gradients at random θ, for the same basis."""
    pm = PhysicsMorpher(parameter_max_power=powers, parameter_range=ranges)
    comps = find_components(powers, overall)
    np.testing.assert_array_equal(pm.find_components(overall), comps)
    rng = np.random.default_rng(3)
    lo, hi = np.array(ranges, float).T
    basis = lo + (hi - lo) * rng.random((len(comps), len(powers)))
    pm.set_basis(basis_numpy=basis)
    ours = Morpher(comps, basis)
    scale = np.max(np.abs(ours.matrix))
    np.testing.assert_allclose(ours.matrix, pm.morphing_matrix, rtol=0, atol=1e-12 * scale)
    thetas = np.vstack([lo + (hi - lo) * rng.random((20, len(powers))), np.zeros(len(powers))])
    w = np.array([pm.calculate_morphing_weights(t) for t in thetas])
    g = np.array([pm.calculate_morphing_weight_gradient(t) for t in thetas])
    np.testing.assert_allclose(ours.weights(thetas), w, rtol=0, atol=1e-12 * np.abs(w).max())
    np.testing.assert_allclose(ours.gradients(thetas), g, rtol=0, atol=1e-12 * np.abs(g).max())


def test_nuisance_gradients_equal_madminers():
    rng = np.random.default_rng(1)
    w0 = rng.uniform(0.5, 2, 50)
    wp, wm, w2 = w0 * rng.uniform(1.0, 1.3, 50), w0 * rng.uniform(0.7, 1.0, 50), w0 * 1.05
    nm = NuisanceMorpher(
        {
            "n1": NuisanceParameter("n1", "s1", "pos", "neg"),
            "n2": NuisanceParameter("n2", "s2", "one", None),
        },
        ["ref", "pos", "neg", "one"],
        "ref",
    )
    a, b = nuisance_coefficients(w0, [wp, w2], [wm, None])
    weights = np.stack([w0, wp, wm, w2], axis=1)
    nu = np.array([0.6, -1.4])
    np.testing.assert_allclose(a, nm.calculate_a(weights), rtol=1e-13)
    np.testing.assert_allclose(b, nm.calculate_b(weights), rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(
        nuisance_factor_gradients(nu, a, b),
        nm.calculate_nuisance_factor_gradients(nu, weights),
        rtol=1e-12,
    )


def _setup():
    s = EFTSetup()
    s.add_parameter("dim6", 2, "CWL2", "16.52*theta", 2, (-20.0, 20.0))
    s.add_parameter("dim6", 5, "CPWL2", None, 2, (-20.0, 20.0))
    s.add_benchmark({"CWL2": 0.0, "CPWL2": 0.0}, "sm")
    s.add_benchmark({"CWL2": 15.2, "CPWL2": 0.1}, "w")
    s.set_morphing(max_overall_power=2, seed=1)
    s.add_systematics("scale", "mu_var", scale="mu", scale_variations=(0.5, 1.0, 2.0))
    return s


def test_madminer_loader_reads_identical_numbers(tmp_path):
    ours = _setup()
    ours.save(tmp_path / "s.h5")
    (params, benches, _, comps, matrix, _, _, systs, *_) = load_madminer_settings(
        str(tmp_path / "s.h5"), include_nuisance_benchmarks=True
    )
    assert [(p.name, p.lha_block, p.lha_id, p.max_power) for p in params.values()] == [
        ("CWL2", "dim6", 2, 2),
        ("CPWL2", "dim6", 5, 2),
    ]
    assert [tuple(p.val_range) for p in params.values()] == [(-20.0, 20.0)] * 2
    # transforms MadMiner evaluates (with eval) give the values eftflow writes to the cards
    for p in params.values():
        for theta in (-3.5, 0.0, 7.25):
            assert eval(p.transform, {"theta": theta}) == ours.parameters[p.name].card_value(theta)
    assert list(benches) == list(ours.benchmarks)
    for name, b in benches.items():
        assert [b.values[p] for p in ours.parameter_names] == list(
            ours.benchmarks[name].vector(ours.parameter_names)
        )
    np.testing.assert_array_equal(comps, ours.components)
    np.testing.assert_array_equal(matrix, ours.morphing_matrix)
    assert [(s.name, s.type.value, s.scale.value) for s in systs.values()] == [
        ("mu_var", "scale", "mu")
    ]


def _mutated(tmp_path, fn):
    src = tmp_path / "good.h5"
    if not src.exists():
        _setup().save(src)
    bad = tmp_path / "bad.h5"
    shutil.copy(src, bad)
    with h5py.File(bad, "a") as f:
        fn(f)
    return bad


def _replace(name, value):
    def fn(f):
        del f[name]
        f[name] = value

    return fn


def _shift_benchmark(f):
    values = f["benchmarks/values"][()]
    values[2, 0] += 1.0
    f["benchmarks/values"][...] = values


BAD_FILES = [
    (_replace("benchmarks/values", np.zeros((6, 3))), "benchmarks/values"),
    (_replace("parameters/lha_ids", np.array([1])), "parameters/lha_ids"),
    (_replace("benchmarks/is_nuisance", np.array([0, 0, 0])), "benchmarks/is_nuisance"),
    (_replace("parameters/max_power", np.array([2.5, 2.0])), "parameters/max_power"),
    (_replace("morphing/morphing_matrix", np.zeros((6, 5))), "morphing/morphing_matrix"),
    (_replace("morphing/components", np.zeros((6, 3), int)), "morphing/components"),
    (lambda f: f.__delitem__("morphing/morphing_matrix"), "morphing"),
    (_shift_benchmark, "morphing/morphing_matrix"),
    (
        # 8 benchmarks: 6 of the morphing basis, 2 of the scale systematic's nuisance parameter
        _replace(
            "benchmarks/names", np.array([b"a", b"a", b"b", b"c", b"d", b"e", b"f", b"g"], "S256")
        ),
        "benchmarks/names",
    ),
    (
        _replace("parameters/transforms", np.array([b"__import__('os')", b"theta"], "S256")),
        "parameters/transforms (CWL2)",
    ),
    (
        _replace("parameters/val_ranges", np.array([[1.0, 0.0], [0.0, 1.0]])),
        "parameters/val_ranges (CWL2)",
    ),
]


@pytest.mark.parametrize("mutate, field", BAD_FILES)
def test_bad_setup_file_names_file_and_dataset(tmp_path, mutate, field):
    bad = _mutated(tmp_path, mutate)
    with pytest.raises(InputError) as err:
        EFTSetup.from_file(bad)
    assert err.value.file == str(bad) and err.value.field == field


def test_nan_benchmark_value_is_refused(tmp_path):
    def fn(f):
        values = f["benchmarks/values"][()]
        values[1, 1] = np.nan
        f["benchmarks/values"][...] = values

    bad = _mutated(tmp_path, fn)
    with pytest.raises(InputError, match="'w' has a value that is not finite"):
        EFTSetup.from_file(bad)
