"""Report sections show the numbers of their result files, with units, CL labels and names.

Small result files are written by hand (no workflow run); every number the report shows is
checked against the file it came from.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from eftflow.report import build_report


def _write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def _section(html: str, title: str) -> str:
    m = re.search(rf"<section id=\"[^\"]*\"><h2>{re.escape(title)}</h2>(.*?)</section>", html, re.S)
    assert m, f"no section {title!r}"
    return m.group(1)


def _rows(fragment: str, caption: str) -> list[list[str]]:
    m = re.search(rf"<caption>{re.escape(caption)}[^<]*</caption>(.*?)</table>", fragment, re.S)
    assert m, f"no table {caption!r}"
    return [
        [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", m.group(1), re.S)
        if "<td" in row
    ]


def _report(results: Path, tmp_path: Path, **kwargs) -> str:
    out = tmp_path / "report.html"
    info = build_report(results, out, workdir=tmp_path, **kwargs)
    assert not info["failed"], info["failed"]
    return out.read_text()


def _fisher_entry(info, names, kind, profiled=None):
    m = np.asarray(info, float)
    entry = {
        "kind": kind,
        "parameter_names": names,
        "theta": [0.0, 0.0],
        "luminosity": 1e5,
        "information": m.tolist(),
        "covariance": np.zeros(m.shape * 2).tolist(),
        "determinant": float(np.linalg.det(m)),
        "eigenvalues": np.linalg.eigvalsh(m).tolist(),
        "extra": {},
    }
    if profiled is not None:
        entry["profiled"] = {"information": profiled, "covariance": []}
    return entry


def test_fisher_section_shows_profiled_matrices_and_luminosity_in_fb(tmp_path):
    full = [[1.2e8, 5.0e7, -8.0e4], [5.0e7, 4.7e7, -3.6e4], [-8.0e4, -3.6e4, 454.0]]
    prof = [[1.0e8, 4.5e7], [4.5e7, 4.4e7]]
    names = ["W", "Y", "lumi"]
    results = tmp_path / "results"
    _write(
        results / "compute_fisher_information/fisher_information.json",
        {
            "theta": [0.0, 0.0],
            "luminosity": 1e5,
            "partition": "all",
            "analyses": {"truth": _fisher_entry(full, names, "truth", prof)},
        },
    )
    sec = _section(_report(results, tmp_path), "Fisher information")
    assert "100000 pb⁻¹ (100 fb⁻¹)" in sec and "events of partition &#x27;all&#x27;" in sec
    (row,) = _rows(sec, "The same with the nuisance parameters profiled")
    assert row[0] == "truth"
    assert float(row[2]) == pytest.approx(np.linalg.det(prof), rel=1e-3)
    assert row[3] == "W: 1.000e+08, Y: 4.400e+07"  # the profiled diagonal, not the full one
    (full_row,) = _rows(sec, "Summary of the information matrices")
    assert full_row[3].startswith("W: 1.200e+08, Y: 4.700e+07, lumi: 454")


def test_limits_section_shows_cl_as_percent_threshold_and_luminosity(tmp_path):
    results = tmp_path / "results"
    like = {
        "levels": {"0.68": 0.9889, "0.95": 3.8415},
        "intervals": {"0.68": [[-9.86e-5, 9.86e-5]], "0.95": [[-1.94e-4, 1.0e-3]]},
        "intervals_open": {"0.68": [[False, False]], "0.95": [[False, True]]},
    }
    _write(
        results / "compute_limits/limits.json",
        {
            "parameters": ["W<&>"],
            "cl": [0.68, 0.95],
            "fisher": {"file": "f.json", "luminosity": 1e5},
            "histogram": {"observable": "m_ll", "partition": "test", "luminosity": 3e5,
                          "nuisance_mode": "profile"},
            "grids": [{"name": "W", "parameters": ["W<&>"], "likelihoods": {"fisher:truth": like}}],
        },
    )  # fmt: skip
    sec = _section(_report(results, tmp_path), "Expected limits")
    assert "Fisher information at L = 100000 pb⁻¹ (100 fb⁻¹)" in sec
    assert "histogram of m_ll (test events) at L = 300000 pb⁻¹ (300 fb⁻¹)" in sec
    rows = _rows(sec, "One-parameter intervals")
    assert rows == [
        ["W&lt;&amp;&gt;", "fisher:truth", "68 %", "0.9889", "[-9.860e-05, 9.860e-05]"],
        ["W&lt;&amp;&gt;", "fisher:truth", "95 %", "3.841", "[-1.940e-04, ≥ 0.001 (grid edge)]"],
    ]
    assert "W<&>" not in sec  # the name is escaped everywhere


def test_estimator_section_states_theta_luminosity_events_and_named_ratios(tmp_path):
    results = tmp_path / "results"
    entry = {"parameter_names": ["W", "Y"], "theta": [0.0, 0.0], "luminosity": 1e5,
             "extra": {"n_events": 431}}  # fmt: skip
    _write(
        results / "evaluate_estimator/evaluation.json",
        {
            "method": "sally",
            "n_members": 2,
            "truth": {**entry, "information": [[1.28e8, 5e7], [5e7, 4.4e7]]},
            "detector_plus_rate": {**entry, "information": [[1.87e7, 1e6], [1e6, 5.0e6]]},
            "ratio_to_truth": [0.1457, 0.1138],
        },
    )
    sec = _section(_report(results, tmp_path), "Neural estimators")
    assert "Ensemble: sally, 2 member(s)." in sec
    assert "θ = [0.0, 0.0], L = 100000 pb⁻¹ (100 fb⁻¹), from 431 events" in sec
    assert "I_ii per parameter: W 0.1457, Y 0.1138" in sec
    rows = _rows(sec, "Fisher information: truth level")
    assert rows == [["W", "1.280e+08", "1.870e+07"], ["Y", "4.400e+07", "5.000e+06"]]


def _model_result(model_dir=None, cls=None):
    res = {
        "parameters": ["mu"],
        "poi": ["mu"],
        "data": "asimov",
        "injected": {"mu": 1.0},
        "fit": {"names": ["mu"], "values": [1.0], "fixed": [False]},
        "covariance": {"errors": {"mu": 0.2}},
        "minos": {"mu": {"errn": 0.19, "errp": 0.21}},
    }
    if model_dir is not None:
        res["model_dir"] = model_dir
    if cls is not None:
        res["cls"] = cls
    return res


def test_model_section_reads_dict_bands_notes_missing_limits_and_resolves_model_dir(tmp_path):
    results = tmp_path / "results"
    bands = {"-2sigma": 0.5, "-1sigma": 0.7, "+0sigma": 1.0, "+1sigma": 1.4, "+2sigma": 1.9}
    cls = {"mu": {"cl": 0.95, "observed": 1.1, "expected": bands}}
    _write(results / "run_inference/a/result.json", _model_result("built/a", cls))
    _write(results / "run_inference/b/result.json", _model_result())
    # the recorded model_dir is relative to the workflow directory, not to the current one
    _write(tmp_path / "built/a/model.json", {"diagnostics": []})
    sec = _section(_report(results, tmp_path), "Statistical model")
    a, b = sec.split("<h3>b</h3>")
    (row,) = _rows(a, "CLs upper limit")
    assert row == ["mu", "0.95", "1.1", "0.5", "0.7", "1", "1.4", "1.9"]
    assert "no process of the model uses a ratio ensemble" in a  # model.json was found
    assert "No CLs limit and no Neyman construction were run" in b
    assert "No CLs limit" not in a


def test_provenance_shows_a_nested_generator_record_as_name_and_version():
    from eftflow.report.sections.provenance import cell

    record = {"generator": "builtin", "pythia_version": "8.317.2", "seed": 3, "mll": [1, 2]}
    assert cell(record) == "builtin · pythia 8.317.2"
    assert cell("builtin") == "builtin" and cell({}) == "(record)"


def test_embedded_provenance_cannot_break_out_of_its_script_element():
    from eftflow.report.html import page

    prov = {"results": "runs/<!--<script>x</script>-->&more"}
    doc = page("t", "s", [], "f", provenance=prov)
    m = re.search(r'<script type="application/json" id="eftflow-provenance">(.*?)</script>', doc)
    assert m and not re.search(r"[<>&]", m.group(1))
    assert json.loads(m.group(1)) == prov
    assert doc.count("</script>") == 1
