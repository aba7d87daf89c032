"""Bad model specs and workspaces: one error naming the file and the field, nothing written."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import yaml

from eftflow.cli import main
from eftflow.errors import EftflowError

WS = {
    "channels": [
        {
            "name": "sr",
            "samples": [
                {
                    "name": "s",
                    "data": [20.0, 10.0],
                    "modifiers": [
                        {"name": "mu", "type": "normfactor", "data": None},
                        {"name": "s_norm", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}},
                    ],
                },
                {
                    "name": "b",
                    "data": [30.0, 40.0],
                    "modifiers": [
                        {"name": "b_norm", "type": "normsys", "data": {"hi": 1.05, "lo": 0.95}}
                    ],
                },
            ],
        }
    ],
    "observations": [{"name": "sr", "data": [50.0, 50.0]}],
    "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
    "version": "1.0.0",
}
BASE = {
    "poi": "mu",
    "device": "cpu",
    "binned": [{"name": "sr", "workspace": "ws.json"}],
    "data": "asimov",
    "asimov": {"mu": 1.0},
}


def _write(tmp_path, spec=None, ws=None):
    (tmp_path / "ws.json").write_text(json.dumps(WS if ws is None else ws))
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(BASE if spec is None else spec))
    return path


def _build(path):
    from eftflow.inference.model.spec import build_model, inference_options, load_spec

    spec = load_spec(path)
    model, _ = build_model(spec)
    return model, inference_options(spec, model)


def _edit(**changes):
    spec = copy.deepcopy(BASE)
    for key, value in changes.items():
        spec[key] = value
    return spec


def _pool_region(**extra):
    proc = {"name": "sig", "ensemble": "ens", "parameters": [], "rate": 10.0, **extra}
    return [{"name": "ur", "pool": "pool.npy", "processes": [proc]}]


BAD_SPECS = [
    ("param_typo", _edit(parameters=[{"name": "mu", "lowr": 0.5}]), "parameters[0].lowr"),
    (
        "binned_typo",
        _edit(binned=[{"name": "sr", "workspace": "ws.json", "normsys_cod": "code4"}]),
        "binned[0].normsys_cod",
    ),
    ("unbinned_typo", _edit(unbinned=[{"name": "ur", "pol": "p.npy"}]), "unbinned[0].pol"),
    (
        "process_typo",
        _edit(unbinned=_pool_region(parametrs=["mu"])),
        "unbinned[0].processes[0].parametrs",
    ),
    (
        "named_twice",
        _edit(parameters=[{"name": "mu", "upper": 5}, {"name": "mu", "upper": 3}]),
        "parameters[1].name",
    ),
    ("low_eq_high", _edit(parameters=[{"name": "mu", "init": 1, "lower": 1, "upper": 1}]), None),
    ("low_gt_high", _edit(parameters=[{"name": "mu", "init": 3, "lower": 5, "upper": 1}]), None),
    (
        "bounds_disjoint_from_workspace",
        _edit(parameters=[{"name": "mu", "init": 25, "lower": 20, "upper": 30}]),
        "parameters[0]",
    ),
    (
        "init_outside_workspace_bounds",
        _edit(parameters=[{"name": "mu", "init": 12, "lower": 0, "upper": 20}]),
        "parameters[0]",
    ),
    ("data_typo", _edit(data="observd"), "data"),
    ("device_typo", _edit(device="gpu"), "device"),
    ("region_name_path", _edit(binned=[{"name": "a/b", "workspace": "ws.json"}]), "binned[0].name"),
    ("n_toys_text", _edit(inference={"toys": {"n_toys": "abc"}}), "inference.toys.n_toys"),
    ("closure_eps_text", _edit(inference={"closure_eps": "abc"}), "inference.closure_eps"),
    ("nvalues_one", _edit(inference={"nvalues": 1}), "inference.nvalues"),
    (
        "neyman_cl",
        _edit(inference={"neyman": {"grid": [0.5, 1.5], "cl": 1.5}}),
        "inference.neyman.cl",
    ),
    ("fixed_poi", _edit(parameters=[{"name": "mu", "init": 1.0, "fixed": True}]), "poi"),
    (
        "profile_of_fixed",
        _edit(
            parameters=[{"name": "s_norm", "fixed": True}],
            inference={"profiles": ["s_norm"]},
        ),
        "inference.profiles[0]",
    ),
    ("asimov_not_mapping", _edit(asimov=1.0), "asimov"),
]


@pytest.mark.parametrize("case", BAD_SPECS, ids=[c[0] for c in BAD_SPECS])
def test_model_qa_bad_spec_names_file_and_field(tmp_path, case):
    _, spec, field = case
    path = _write(tmp_path, spec)
    np.save(tmp_path / "pool.npy", np.zeros((5, 1)))
    with pytest.raises(EftflowError) as info:
        _build(path)
    assert info.value.file == str(path)
    assert info.value.field == (field or "parameters[0]")
    assert "\n" not in str(info.value)


def _bad_ws(edit):
    ws = copy.deepcopy(WS)
    edit(ws)
    return ws


def _empty(ws):
    for s in ws["channels"][0]["samples"]:
        s["data"] = []
    ws["observations"][0]["data"] = []


BAD_WORKSPACES = [
    ("nan_observation", lambda w: w["observations"][0].update(data=[float("nan"), 5.0]), "data[0]"),
    ("negative_observation", lambda w: w["observations"][0].update(data=[5.0, -1.0]), "data[1]"),
    ("empty_channel", _empty, "channels[0].samples[0].data"),
    (
        "negative_expected_total",
        lambda w: w["channels"][0]["samples"][1].update(data=[-30.0, 40.0]),
        "binned[0].workspace",
    ),
]


@pytest.mark.parametrize("case", BAD_WORKSPACES, ids=[c[0] for c in BAD_WORKSPACES])
def test_model_qa_bad_workspace_cli_one_line_nothing_written(tmp_path, capsys, case):
    _, edit, field = case
    path = _write(tmp_path, ws=_bad_ws(edit))
    out = tmp_path / "built"
    assert main(["build-model", str(path), "-o", str(out), "--threads", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ws.json" in err and field in err
    assert not out.exists()
    assert {p.name for p in tmp_path.iterdir()} == {"ws.json", "spec.yaml"}


def test_model_qa_unbinned_negative_rate_and_nan_pool(tmp_path):
    from eftflow.inference.model import ExactLogRatio, Process, UnbinnedRegion

    lr = ExactLogRatio(lambda x, p: (x[:, 0] * 0.0)[None].expand(p.shape[0], -1), [])
    with pytest.raises(EftflowError, match="rate must be a positive number") as info:
        UnbinnedRegion("ur", np.zeros((4, 1)), [Process("s", lr, rate=-5.0)])
    assert info.value.field == "ur.processes[0].rate"
    with pytest.raises(EftflowError, match="not finite"):
        UnbinnedRegion("ur", np.array([[0.0], [np.nan]]), [Process("s", lr, rate=5.0)])
    # in a spec: the pool file is named
    np.save(tmp_path / "pool.npy", np.array([[0.1], [np.nan]]))
    path = _write(tmp_path, _edit(unbinned=_pool_region()))
    with pytest.raises(EftflowError, match="non-finite") as info:
        _build(path)
    assert info.value.file == str(tmp_path / "pool.npy")
    assert info.value.field == "unbinned[0].pool"


def test_model_qa_fix_a_workspace_nuisance_keeps_its_constraint(tmp_path):
    spec = _edit(parameters=[{"name": "s_norm", "init": 0.5, "fixed": True}])
    model, _ = _build(_write(tmp_path, spec))
    p = model.parameters[model.index("s_norm")]
    assert (p.fixed, p.init, p.constraint, p.kind) == (True, 0.5, "normal", "nuisance")
    assert "s_norm" in model.constraints.names
