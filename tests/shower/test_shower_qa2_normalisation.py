"""Shower weights are pb per event whatever the LHE file's ``event_norm`` (QA campaign 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pythia8mc")

from eftflow.generate.lhe import LHEReader  # noqa: E402
from eftflow.shower.pythia import shower_lhe  # noqa: E402

#: the real MadGraph file of ../shared/data, beside the checkout (as in CI); the 40-event copy in
#: tests/generate/data cannot stand in: its header still declares 1000 events
REAL = Path(__file__).resolve().parents[3] / "shared/data/lhe/madgraph-3.5.8-pp_to_jj.lhe.gz"
IDS = ["1", "2", "46"]


@pytest.mark.skipif(not REAL.is_file(), reason="shared MadGraph test file not present")
def test_event_norm_average_file_gives_pb_per_event(tmp_path):
    """MadGraph ``event_norm = average``: each event carries σ; the store must sum to σ.

    Before the fix the shower stored the weights as written, so 30 showered events of the real
    MadGraph file summed to 30 σ instead of 30/1000 σ.
    """
    reader = LHEReader(REAL, benchmarks=IDS)
    assert reader.event_norm == "average"
    expected = reader.benchmark_weights(reader.read())  # pb per event, Σ over file = σ
    n = 30
    res = shower_lhe(
        REAL,
        tmp_path / "o.zarr",
        IDS,
        seed=3,
        config={"mode": "parton", "max_events": n, "max_failure_fraction": 1.0},
    )
    assert res.n_read == n
    got = np.array([res.cross_sections[b] for b in IDS])
    # parton mode on pp -> jj: Pythia may drop an event; its weights go with it
    kept = expected[:n]
    assert res.n_accepted >= n - 2
    np.testing.assert_array_less(got, kept.sum(0) * (1 + 1e-9))
    np.testing.assert_array_less(kept.sum(0) * (res.n_accepted / n) * 0.5, got)
    # per-event values: each stored weight row is one of the LHE rows, in pb
    from eftflow.store.particles import ParticleStore

    store = ParticleStore(tmp_path / "o.zarr")
    w = store.read_weights()
    assert w.shape == (res.n_accepted, len(IDS))
    for row in w:
        assert np.isclose(kept, row, rtol=1e-6).all(axis=1).any()


@pytest.mark.skipif(not REAL.is_file(), reason="shared MadGraph test file not present")
@pytest.mark.parametrize("idwtup", [3, -3, 1])
def test_idwtup_other_than_4_is_refused(tmp_path, idwtup):
    """IDWTUP = ±3: Pythia divides the <rwgt> weights by XWGTUP (measured: 30 events of the real
    file summed to 0.03 instead of 2e7 pb); ±1/±2: Pythia unweights itself. Refuse, name the field.
    """
    import gzip

    from eftflow.errors import InputError

    text = gzip.open(REAL, "rt").read()
    head = "2212 2212 6.500000e+03 6.500000e+03 0 0 247000 247000 -4 1"
    assert head in text
    src = tmp_path / "in.lhe"
    src.write_text(text.replace(head, head.replace(" -4 1", f" {idwtup} 1")))
    out = tmp_path / "o.zarr"
    with pytest.raises(InputError, match="IDWTUP") as err:
        shower_lhe(src, out, IDS, seed=3, config={"mode": "parton", "max_events": 5})
    assert err.value.field == "init.IDWTUP" and str(src) in str(err.value.file)
    assert not out.exists() and list(tmp_path.iterdir()) == [src]
