"""``compute-fisher-information``: a bad analysis setting names the config and its key path.

Before, errors named FisherInformation's internal arguments (``bins1``, ``observable1``,
``theta``) and a one-element ``range`` crashed with a bare ValueError; nothing may be written.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from eftflow.cli import main


@pytest.fixture(scope="module")
def toy_store(tmp_path_factory):
    from eftflow.generate.toy import sample_toy, toy_cross_section, toy_dsigma, toy_setup
    from eftflow.store.events import EventStoreWriter

    d = tmp_path_factory.mktemp("fisher_cfg")
    setup = toy_setup()
    setup.save(d / "setup.h5")
    n = 2000
    rng = np.random.default_rng(2)
    names = [b.name for b in setup.physics_benchmarks()]
    bv = setup.benchmark_array()
    x = sample_toy(n, bv[0], rng)
    p = toy_dsigma(x, bv[0]) / toy_cross_section(bv[0])
    w = np.stack([toy_dsigma(x, t) for t in bv], axis=1) / p[:, None] / n
    attrs = {"signal_events": [n] + [0] * (len(names) - 1)}
    with EventStoreWriter(d / "ev.zarr", ["x", "x2"], names, chunk_size=1000, attrs=attrs) as wr:
        wr.append(observables=np.stack([x, x * x], 1), weights=w,
                  sampling_benchmark=np.zeros(n, np.int64))  # fmt: skip
    return d / "ev.zarr", d / "setup.h5"


def _histo(**kw):
    return {"name": "h", "kind": "histo", "observable": "x", "bins": 4, **kw}


CASES = [
    ({"theta": [0.1]}, "fisher.theta", "2 components"),
    ({"analyses": [{"name": "t", "kind": "truth"}, _histo(observable="nope")]},
     "fisher.analyses[1].observable", "nope"),
    ({"analyses": [_histo(bins=[1.0, 0.5])]}, "fisher.analyses[0].bins", "increasing"),
    ({"analyses": [_histo(range=[0.0])]}, "fisher.analyses[0].range", "[low, high]"),
    ({"analyses": [_histo(range=[1.0, 0.0])]}, "fisher.analyses[0].range", "low < high"),
    ({"analyses": [{"name": "h2", "kind": "histo2d", "observable": "x", "observable2": "x2",
                    "bins2": 2, "range2": [3.0, 1.0]}]}, "fisher.analyses[0].range2", "low < high"),
    ({"analyses": [{"name": "h2", "kind": "histo2d", "observable": "x"}]},
     "fisher.analyses[0].observable2", "observable2"),
    ({"distribution": {"observable": "y"}}, "fisher.distribution.observable", "'y'"),
]  # fmt: skip


@pytest.mark.parametrize("fisher, field, text", CASES)
def test_bad_analysis_names_config_file_and_key(toy_store, tmp_path, capsys, fisher, field, text):
    store, setup = toy_store
    cfg = tmp_path / "config.yaml"
    cfg.write_text(json.dumps({"fisher": fisher}))  # JSON is YAML
    out = tmp_path / "fisher.json"
    rc = main(["compute-fisher-information", str(store), "--setup", str(setup),
               "--config", str(cfg), "-o", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert rc != 0
    assert f"{cfg}: {field}: " in err and text in err
    assert "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == [cfg]
