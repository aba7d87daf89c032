"""param_card_transform is evaluated at setup time: non-finite card values are refused."""

from __future__ import annotations

import pytest

from eftflow.config import load_config
from eftflow.errors import ConfigError
from eftflow.physics.parameters import Parameter
from eftflow.setup import EFTSetup


@pytest.mark.parametrize("transform", ["1/0*theta", "1/theta", "log(theta)", "sqrt(theta - 1)"])
def test_non_finite_transform_is_refused(transform):
    with pytest.raises(ConfigError, match="the param card needs finite values") as err:
        Parameter("W", parameter_range=(-1.0, 1.0), param_card_transform=transform)
    assert err.value.field == "parameters.W.param_card_transform"


def test_transform_finite_on_the_range_is_accepted():
    p = Parameter("W", parameter_range=(1.0, 2.0), param_card_transform="1/theta")
    assert p.card_value(2.0) == 0.5


def test_config_names_the_list_index(tmp_path):
    cfg = load_config(None)
    cfg["parameters"][-1]["param_card_transform"] = "1/0*theta"
    with pytest.raises(ConfigError) as err:
        EFTSetup.from_config(cfg, file="config.yaml")
    i = len(cfg["parameters"]) - 1
    assert err.value.field == f"parameters[{i}].param_card_transform"
    assert err.value.file == "config.yaml"


def test_benchmark_value_outside_the_transform_domain():
    s = EFTSetup()
    s.add_parameter("eft", 1, "W", param_card_transform="sqrt(theta)", parameter_range=(0.0, 1.0))
    with pytest.raises(ConfigError, match="benchmark 'neg'") as err:
        s.add_benchmark({"W": -1.0}, "neg", verbose=False)
    assert err.value.field == "parameters.W.param_card_transform"


def test_morphing_errors_name_the_config_file():
    from eftflow.errors import MorphingError

    cfg = load_config(None)
    cfg["morphing"]["n_benchmarks"] = 2
    with pytest.raises(MorphingError) as err:
        EFTSetup.from_config(cfg, file="config.yaml")
    assert err.value.file == "config.yaml" and err.value.field == "morphing.n_benchmarks"
