"""Report section "Training samples": balanced sets and held-out events."""

from __future__ import annotations

import json


def test_report_training_samples_show_balance_and_held_out_events(tmp_path):
    from eftflow.report.registry import ReportContext
    from eftflow.report.sections.augmentation import augmentation

    d = tmp_path / "results" / "augment_samples"
    d.mkdir(parents=True)
    summary = {
        "plain": {"method": "local", "n_samples": 10},
        "bal": {"method": "ratio", "n_samples": 200},
    }
    (d / "summary.json").write_text(json.dumps(summary))
    (d / "plain.zarr").mkdir()
    (d / "plain.zarr" / "zarr.json").write_text(json.dumps({"attributes": {"method": "local"}}))
    attrs = {
        "balance": {"observable": "m_ll", "edges": [500.0], "share_unbalanced": [0.999, 0.001],
                    "share_balanced": [0.99, 0.01], "expected_repeats": [429.0, 2.42]},
        "held_out": {"fraction": 0.25, "rows": [150, 200]},
    }  # fmt: skip
    (d / "bal.zarr").mkdir()
    (d / "bal.zarr" / "zarr.json").write_text(json.dumps({"attributes": attrs}))
    html = augmentation(ReportContext(results=tmp_path / "results"))
    assert "Balanced sets" in html
    second = html.split("Balanced sets")[1]
    row = second[second.index("<td>bal</td>") :].split("</tr>")[0]
    for cell in ("m_ll", "edges at 500", "0.999, 0.001", "0.99, 0.01", "429, 2.42",
                 "50 of 200 (25% of the events)"):  # fmt: skip
        assert f"<td>{cell}</td>" in row, cell
    assert "<td>plain</td>" not in second  # only the balanced set
    # no set balanced or held out: no second table
    (d / "bal.zarr" / "zarr.json").write_text(json.dumps({"attributes": {}}))
    assert "Balanced sets" not in augmentation(ReportContext(results=tmp_path / "results"))
