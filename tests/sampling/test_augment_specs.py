"""θ/ν specifications: resolution, seeding, config forms, bad inputs."""

import numpy as np
import pytest

from eftflow.errors import ConfigError, InputError
from eftflow.sampling import specs


def test_benchmark_and_points(toy):
    assert specs.resolve_thetas(specs.benchmark("t1_pos"), toy).tolist() == [[0.5, 0.0]]
    out = specs.resolve_thetas(specs.benchmarks(["sm", "t2_pos"]), toy)
    assert out.tolist() == [[0.0, 0.0], [0.0, 0.5]]
    assert specs.resolve_thetas(specs.morphing_points([[0.1, 0.2], [0.3, 0.4]]), toy).shape == (
        2,
        2,
    )


def test_grid_order_first_parameter_slowest(toy):
    g = specs.resolve_thetas(specs.grid([(-1, 1, 2), (0, 1, 3)]), toy)
    assert g.tolist() == [[-1, 0], [-1, 0.5], [-1, 1], [1, 0], [1, 0.5], [1, 1]]


def test_random_points_are_seeded_and_follow_priors(toy):
    spec = specs.random_morphing_points(4000, [("flat", -1, 1), ("gaussian", 0.5, 0.1)])
    a = specs.resolve_thetas(spec, toy, np.random.default_rng(3))
    b = specs.resolve_thetas(spec, toy, np.random.default_rng(3))
    assert np.array_equal(a, b)
    assert a[:, 0].min() >= -1 and a[:, 0].max() <= 1
    assert abs(a[:, 1].mean() - 0.5) < 0.01 and abs(a[:, 1].std() - 0.1) < 0.01


def test_unknown_benchmark_names_field_and_known_ones(toy):
    with pytest.raises(ConfigError, match="unknown benchmark 'nope'.*sm") as err:
        specs.resolve_thetas(specs.benchmark("nope"), toy)
    assert err.value.field == "theta.name"
    with pytest.raises(ConfigError) as err:
        specs.resolve_thetas(specs.benchmarks(["sm", "nope"]), toy)
    assert err.value.field == "theta.names[1]"


def test_wrong_dimension(toy):
    with pytest.raises(ConfigError, match="3 components but the setup has 2"):
        specs.resolve_thetas(specs.morphing_point([0.0, 0.0, 1.0]), toy)
    with pytest.raises(ConfigError, match="1 priors given"):
        specs.resolve_thetas(
            specs.random_morphing_points(3, [("flat", 0, 1)]), toy, np.random.default_rng(0)
        )
    with pytest.raises(InputError, match="2 components"):
        specs.check_theta_dimension([[1.0, 2.0, 3.0]], 2)


def test_bad_priors():
    with pytest.raises(ConfigError, match="unknown prior shape 'beta'"):
        specs.random_morphing_points(3, [("beta", 0, 1)])
    with pytest.raises(ConfigError, match="low < high"):
        specs.random_morphing_points(3, [("flat", 1, 0)])


def test_config_forms(toy):
    assert specs.spec_from_config("sm") == specs.benchmark("sm")
    s = specs.spec_from_config(
        {"type": "random", "n": 5, "priors": [["flat", -1, 1], ["flat", -1, 1]]}
    )
    assert specs.resolve_thetas(s, toy, np.random.default_rng(0)).shape == (5, 2)
    with pytest.raises(ConfigError, match="unknown θ specification type 'banana'"):
        specs.spec_from_config({"type": "banana"})
    with pytest.raises(ConfigError, match="needs key 'names'"):
        specs.spec_from_config({"type": "benchmarks"})


def test_nu_specs():
    assert specs.resolve_nus(None, 3, 2).tolist() == [[0, 0]] * 3
    nus = specs.resolve_nus(
        specs.iid_nuisance_parameters("gaussian", 0, 1), 2000, 2, np.random.default_rng(1)
    )
    assert nus.shape == (2000, 2) and abs(nus.std() - 1) < 0.05
    assert specs.resolve_nus(specs.nuisance_point([0.5]), 2, 1).tolist() == [[0.5], [0.5]]
    with pytest.raises(ConfigError, match="2 components but the setup has 1"):
        specs.resolve_nus(specs.nuisance_point([0.5, 1.0]), 2, 1)
    assert specs.nu_spec_from_config({"type": "iid", "prior": ["flat", -1, 1]}).kind == "iid"


def test_madminer_specification_tuples(toy):
    """madminer.sampling's (kind, argument) tuples are accepted as they are."""
    ms = pytest.importorskip("madminer.sampling")
    r = np.random.default_rng(1)
    assert specs.resolve_thetas(specs.spec_from_config(ms.benchmark("t1_pos")), toy).tolist() == [
        [0.5, 0.0]
    ]
    pts = specs.spec_from_config(ms.morphing_points([[0.1, 0.2], [0.3, 0.4]]))
    assert specs.resolve_thetas(pts, toy).tolist() == [[0.1, 0.2], [0.3, 0.4]]
    rnd = specs.spec_from_config(ms.random_morphing_points(50, [("flat", -1, 1), ("flat", 0, 1)]))
    assert specs.resolve_thetas(rnd, toy, r).shape == (50, 2)
    assert specs.nu_spec_from_config(ms.nominal_nuisance_parameters()).kind == "nominal"
    assert specs.nu_spec_from_config(ms.iid_nuisance_parameters("gaussian", 0, 1)).value == (
        "gaussian",
        0.0,
        1.0,
    )
    with pytest.raises(ConfigError, match="θ specification from eftflow.sampling") as err:
        specs.spec_from_config(("nonsense", 1), field="theta")
    assert err.value.field == "theta"
