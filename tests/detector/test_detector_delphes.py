"""Delphes backend: fake DelphesHepMC3 end to end, missing branches, weight matching, real Delphes (opt-in)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from eftflow.analysis.expressions import Expression
from eftflow.analysis.objects import ObjectStore
from eftflow.detector.base import DetectorJob, ParticleSource, get_detector
from eftflow.detector.delphes import match_weights, read_delphes
from eftflow.errors import BackendError, InputError


def test_fake_delphes_end_to_end(make_dilepton, fake_delphes, tmp_path):
    exe, card = fake_delphes
    ev, m = make_dilepton(60, jet=True, n_benchmarks=3)
    w = np.asarray(ev.weights) * np.arange(1, 61)[:, None]  # distinct per event
    import awkward as ak

    ev = ak.zip({"particles": ev.particles, "weights": w}, depth_limit=1)
    det = get_detector("delphes", {"executable": exe, "card": card})
    src = ParticleSource.from_arrays(ev, ["sm", "a", "b"], sampling_benchmark=0)
    res = det.simulate(DetectorJob(src, tmp_path / "obj.zarr", seed=1, chunk_size=25))
    store = ObjectStore(tmp_path / "obj.zarr")
    assert res.n_events == store.n_events == 60
    chunk = store.read()
    np.testing.assert_allclose(chunk["weights"], w)  # matched event by event
    assert np.all(chunk["sampling_benchmark"] == 0)
    mll = Expression("(mu[0] + mu[1]).m").evaluate_array(chunk["objects"])
    ok = np.isfinite(mll)
    assert ok.mean() > 0.8
    np.testing.assert_allclose(
        mll[ok], m[ok], rtol=1e-4
    )  # the fake does not smear (float32 storage)
    assert np.all(Expression("n_j").evaluate_array(chunk["objects"]) >= 1)
    assert store.detector["backend"] == "delphes"
    assert (
        sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    )  # scratch removed


def test_missing_branches_error(tmp_path):
    import awkward as ak
    import uproot

    path = tmp_path / "bad.root"
    with uproot.recreate(path) as f:
        f["Delphes"] = {"Jet": ak.zip({"PT": ak.Array([[30.0], []]), "Eta": ak.Array([[0.1], []])})}
    with pytest.raises(
        InputError, match=r"lacks the expected branches .*Electron.PT.*Jet.Phi"
    ) as info:
        next(read_delphes(path))
    assert str(path) in str(info.value)
    with pytest.raises(InputError, match="no tree 'Other'"):
        next(read_delphes(path, tree="Other"))
    (tmp_path / "junk.root").write_text("not root")
    with pytest.raises(InputError, match="cannot open"):
        next(read_delphes(tmp_path / "junk.root"))


def test_event_numbers_checked():
    w = np.arange(10.0)[:, None]
    np.testing.assert_array_equal(match_weights(np.array([0, 2, 3]), w, -1), [[0.0], [2.0], [3.0]])
    with pytest.raises(InputError, match="do not match"):
        match_weights(np.array([0, 10]), w, -1)
    with pytest.raises(InputError, match="not strictly increasing"):
        match_weights(np.array([3, 2]), w, -1)
    with pytest.raises(InputError, match="not strictly increasing"):
        match_weights(np.array([2, 3]), w, 2)


def test_delphes_failure_is_backend_error(make_dilepton, tmp_path):
    exe = tmp_path / "DelphesHepMC3"
    exe.write_text("#!/bin/sh\necho 'something broke' >&2\nexit 3\n")
    exe.chmod(0o755)
    card = tmp_path / "card.tcl"
    card.write_text("#\n")
    ev, _ = make_dilepton(5)
    det = get_detector("delphes", {"executable": str(exe), "card": str(card)})
    out = tmp_path / "o.zarr"
    with pytest.raises(BackendError, match=r"exit status 3\):\nsomething broke"):
        det.simulate(DetectorJob(ParticleSource.from_arrays(ev, ["sm", "bsm"]), out, seed=1))
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.external
@pytest.mark.skipif(
    not os.environ.get("DELPHES_HOME"), reason="needs a real Delphes (set DELPHES_HOME)"
)
def test_real_delphes(make_dilepton, tmp_path):
    ev, _ = make_dilepton(200, jet=True)
    det = get_detector("delphes", {})
    res = det.simulate(
        DetectorJob(ParticleSource.from_arrays(ev, ["sm", "bsm"]), tmp_path / "o.zarr", seed=1)
    )
    store = ObjectStore(tmp_path / "o.zarr")
    assert res.n_events == store.n_events == 200
    mll = Expression("(mu[0] + mu[1]).m").evaluate_array(store.read()["objects"])
    assert abs(np.nanmedian(mll) - 91.2) < 3
