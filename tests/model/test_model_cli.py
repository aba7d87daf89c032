"""`eftflow fit-model` end to end on a tiny trained ensemble + a pyhf control region."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from eftflow.cli import main


@pytest.fixture(scope="module")
def spec_dir(tmp_path_factory):
    from eftflow.inference.model.systematics import train_nuisance_network
    from eftflow.inference.model.toy import SystToy
    from eftflow.ml.train import TrainingConfig

    from .conftest import CR_WORKSPACE

    d = tmp_path_factory.mktemp("spec")
    toy = SystToy(kappa=0.2)
    rng = np.random.default_rng(5)
    cfg = TrainingConfig(
        method="alice",
        hidden=(8, 8),
        n_epochs=2,
        batch_size=256,
        validation_split=0.2,
        early_stopping=False,
    )
    train_nuisance_network(toy, 4000, cfg, d, rng, n_members=2)
    np.save(d / "pool.npy", rng.normal(size=(400, 1)))
    (d / "cr.json").write_text(json.dumps(CR_WORKSPACE))
    spec = {
        "poi": "mu",
        "device": "cpu",
        "parameters": [
            {"name": "theta_1", "init": 0.0, "lower": -0.5, "upper": 0.5, "fixed": True},
            {"name": "nu_shape", "init": 0.0, "lower": -5, "upper": 5, "constraint": "normal"},
        ],
        "binned": [{"name": "cr", "workspace": "cr.json"}],
        "unbinned": [
            {
                "name": "sr",
                "pool": "pool.npy",
                "spread": {"name": "gamma_sr"},
                "processes": [
                    {
                        "name": "sig",
                        "ensemble": "nu_network/ensemble",
                        "parameters": ["theta_1", "nu_shape"],
                        "rate": 500.0,
                        "normfactors": ["mu"],
                        "normsys": {"nu_norm": [1.1, 0.909]},
                    }
                ],
            }
        ],
        "data": "asimov",
        "asimov": {"mu": 1.0},
        "inference": {
            "profiles": ["mu"],
            "contours": [["mu", "nu_shape"]],
            "nvalues": 5,
            "contour_points": 6,
        },
    }
    (d / "spec.yaml").write_text(yaml.safe_dump(spec))
    return d


def test_model_cli_fit_model(spec_dir):
    out = spec_dir / "out"
    assert main(["fit-model", str(spec_dir / "spec.yaml"), "-o", str(out)]) == 0
    res = json.loads((out / "result.json").read_text())
    assert res["closure"]["passed"]
    assert res["fit"]["values"][res["parameters"].index("mu")] == pytest.approx(1.0, abs=1e-3)
    assert {p["name"] for p in res["pulls"]} >= {"nu_shape", "nu_norm", "gamma_sr"}
    assert res["impacts"]["mu"][0]["name"] in ("nu_norm", "nu_shape", "gamma_sr")
    for f in ("pulls.png", "impacts_mu.png", "profile_mu.png", "contour_mu_nu_shape.png"):
        assert (out / "plots" / f).stat().st_size > 0


def test_model_cli_bad_spec_leaves_nothing(spec_dir):
    bad = spec_dir / "bad.yaml"
    spec = yaml.safe_load((spec_dir / "spec.yaml").read_text())
    spec["unbinned"][0]["processes"][0]["parameters"] = ["theta_1"]  # without the nuisance
    bad.write_text(yaml.safe_dump(spec))
    out = spec_dir / "bad_out"
    assert main(["fit-model", str(bad), "-o", str(out)]) != 0
    assert not out.exists()
    spec["colour"] = "red"
    bad.write_text(yaml.safe_dump(spec))
    assert main(["fit-model", str(bad), "-o", str(out)]) != 0
    assert not out.exists()
