"""The report's "Statistical model" section: the fit of Asimov data, pulls, impacts, coverage."""

from __future__ import annotations

import json

import pytest
import yaml

from eftflow.cli import main
from eftflow.report import build_report

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


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """results/build_model/demo and results/run_inference/demo of a small binned model, made by
    the CLI as the workflow's rules make them."""
    d = tmp_path_factory.mktemp("report_model")
    (d / "ws.json").write_text(json.dumps(WS))
    spec = {
        "poi": "mu",
        "device": "cpu",
        "binned": [{"name": "sr", "workspace": "ws.json", "normsys_code": "code4"}],
        "data": "asimov",
        "asimov": {"mu": 1.0},
        "inference": {"profiles": ["mu"], "nvalues": 5, "toys": {"n_toys": 60, "seed": 4}},
    }
    (d / "spec.yaml").write_text(yaml.safe_dump(spec))
    results = d / "results"
    built = results / "build_model" / "demo"
    assert main(["build-model", str(d / "spec.yaml"), "-o", str(built), "--threads", "1"]) == 0
    out = results / "run_inference" / "demo"
    assert main(["run-inference", str(built), "-o", str(out), "--threads", "1"]) == 0
    return d


def _section(html: str) -> str:
    start = html.index('<section id="statistical-model">')
    return html[start : html.index("</section>", start)]


def test_report_model_section_shows_fit_pulls_impacts_and_coverage(run_dir):
    out = run_dir / "report.html"
    info = build_report(
        run_dir / "results",
        out,
        config={"model": {"specs": {"demo": "spec.yaml"}}},
        workdir=run_dir,
    )
    assert "Statistical model" in info["sections"]
    assert "Statistical model" not in info["skipped"] and "Statistical model" not in info["failed"]
    sec = _section(out.read_text())
    res = json.loads((run_dir / "results/run_inference/demo/result.json").read_text())
    mu = res["fit"]["values"][res["parameters"].index("mu")]
    assert "Fit of Asimov data" in sec and "Asimov closure gate: passed" in sec
    assert f"{mu:.4g}" in sec and f"{res['minos']['mu']['errp']:.4g}" in sec
    cov = res["toys"]["coverage"]["mu"]["0.68"]["coverage"]
    assert f"{cov:.4g}" in sec and "60 toys" in sec
    for fig in ("pulls", "impacts mu", "coverage mu", "profile mu"):
        assert f"<figcaption>{fig}</figcaption>" in sec, fig
    assert sec.count('src="data:image/png;base64,') == 4


def test_report_model_section_skips_or_notes_when_nothing_was_fitted(run_dir, tmp_path):
    out = tmp_path / "r.html"
    # a configured model without results: skipped, naming the missing file
    info = build_report(
        run_dir / "results", out, config={"model": {"specs": {"other": "x.yaml"}}}, workdir=run_dir
    )
    assert (
        "results/run_inference/other/result.json does not exist"
        in (info["skipped"]["Statistical model"])
    )
    # no model in the run: a note, not a skip
    (tmp_path / "results").mkdir()
    info = build_report(tmp_path / "results", out, config={}, workdir=tmp_path)
    assert "Statistical model" not in info["skipped"]
    assert "No statistical model was fitted in this run" in _section(out.read_text())


def test_report_model_section_shows_the_nuisance_shapes_of_the_demo(run_dir, tmp_path):
    """With rule train_nuisance_shapes' summary in the run, the demo's section lists each
    nuisance's closure checks and shows their figure; switched off in the config, it does not."""
    import shutil

    results = tmp_path / "results"
    shutil.copytree(run_dir / "results", results)
    shapes = results / "train_nuisance_shapes"
    shapes.mkdir()
    check = {"rate": 1.0898, "mean_g": 1.0013, "shape_rms": 0.0216, "correlation": 0.136,
             "max_hist_difference": {"m_ll": 0.0216, "pt_ll": 0.0398},
             "hist_chi2": {"m_ll": {"chi2": 14.2, "ndf": 11, "p_value": 0.22},
                           "pt_ll": {"chi2": 30.7, "ndf": 11, "p_value": 0.001}}}  # fmt: skip
    summary = {"format": "eftflow.nuisance_shapes/1", "options": {"method": "alice",
               "check_partition": "validation"}, "figure": "shapes.png",
               "nuisances": {"mu_nu": {"up": {"effective_samples": 460.8}, "down": {},
                                       "check": {"up": check, "down": check}}}}  # fmt: skip
    (shapes / "summary.json").write_text(json.dumps(summary))
    from eftflow.plotting import use_agg

    plt = use_agg()
    fig = plt.figure(figsize=(1, 1))
    fig.savefig(shapes / "shapes.png")
    plt.close(fig)
    out = tmp_path / "r.html"
    config = {"model": {"demo": {"name": "demo"}}}
    build_report(results, out, config=config, workdir=tmp_path)
    sec = _section(out.read_text())
    assert "Shapes of the nuisance parameters: alice networks" in sec
    assert sec.count("<td>mu_nu</td>") == 2 and "1.09" in sec and "0.0398" in sec
    assert "460.8" in sec and "nominal weights times ĝ(x)" in sec
    assert "worst hist. χ²/ndf (paired)" in sec and "30.7/11" in sec  # the worst observable
    config["model"]["demo"]["nuisance_shapes"] = {"enabled": False}
    build_report(results, out, config=config, workdir=tmp_path)
    assert "Shapes of the nuisance parameters" not in _section(out.read_text())
    # a store without scale/pdf weights: the rule's summary is empty, the report says so
    (shapes / "summary.json").write_text(json.dumps({**summary, "nuisances": {}}))
    build_report(results, out, config={"model": {"demo": {"name": "demo"}}}, workdir=tmp_path)
    assert "so the model takes none" in _section(out.read_text())


def test_report_model_section_sets_the_demo_error_against_the_fisher_analyses(run_dir, tmp_path):
    """The demo's MINOS error next to what the run's Fisher analyses expect for the same fit,
    scaled to the model's luminosity; a histogram that beats the model is a warning."""
    import shutil

    results = tmp_path / "results"
    shutil.copytree(run_dir / "results", results)
    res = json.loads((results / "run_inference/demo/result.json").read_text())
    m = res["minos"]["mu"]
    sigma = 0.5 * (abs(m["errn"]) + m["errp"])
    # at a tenth of the model's luminosity: the information scales by 10
    fisher = {
        "theta": [1.0],
        "luminosity": 10.0,
        "analyses": {
            "truth": {"kind": "truth", "parameter_names": ["mu", "nu"], "luminosity": 10.0,
                      "information": [[1.0, 0.0], [0.0, 1.0]],
                      "profiled": {"information": [[4.0 / sigma**2 / 10]]}},
            "x histogram": {"kind": "histo", "parameter_names": ["mu"], "luminosity": 10.0,
                            "information": [[1.0 / (0.8 * sigma) ** 2 / 10]]},
        },
    }  # fmt: skip
    (results / "compute_fisher_information").mkdir()
    (results / "compute_fisher_information/fisher_information.json").write_text(json.dumps(fisher))
    out = tmp_path / "r.html"
    build_report(results, out, config={"model": {"demo": {"luminosity": 100.0}}}, workdir=tmp_path)
    sec = _section(out.read_text())
    assert "Information reached: the error on mu" in sec
    rows = {r.split("</td>")[0]: r for r in sec.split("<tr><td>")[1:]}
    # the model reaches a quarter of the truth level's information, 0.64 of the histogram's
    assert ">0.25</td>" in rows["Fisher: truth (truth)"]
    assert ">0.64</td>" in rows["Fisher: x histogram (histo)"]
    assert "extracts less information than that simple analysis" in sec
    # the profiled block is used (not the unconstrained 'information'), scaled ×10
    assert f">{sigma / 2:.4g}</td>" in rows["Fisher: truth (truth)"]
    assert "another θ" not in sec  # the Fisher information is at the Asimov point mu = 1
    # the score ensemble's detector-level information (rule evaluate_estimator) joins the table
    (results / "evaluate_estimator").mkdir()
    ev = {"method": "sally", "detector_plus_rate": {
        "kind": "detector", "parameter_names": ["mu"], "luminosity": 100.0,
        "information": [[1.0 / (2 * sigma) ** 2]]}}  # fmt: skip
    (results / "evaluate_estimator/evaluation.json").write_text(json.dumps(ev))
    build_report(results, out, config={"model": {"demo": {"luminosity": 100.0}}}, workdir=tmp_path)
    sec = _section(out.read_text())
    rows = {r.split("</td>")[0]: r for r in sec.split("<tr><td>")[1:]}
    sally = rows["SALLY ensemble: detector level + rate (no nuisance parameters)"]
    assert ">4</td>" in sally  # the model has four times its information: no warning for it
    assert sec.count("extracts less information") == 1  # the histogram's only
    assert "smaller than the truth level allows" not in sec
    fisher["theta"] = [0.5]
    (results / "compute_fisher_information/fisher_information.json").write_text(json.dumps(fisher))
    build_report(results, out, config={"model": {"demo": {"luminosity": 100.0}}}, workdir=tmp_path)
    assert "Fisher information is at another θ than the" in _section(out.read_text())
    # a model with more information than the truth level (here 2×) is a warning
    fisher["analyses"]["truth"]["profiled"]["information"] = [[0.5 / sigma**2 / 10]]
    (results / "compute_fisher_information/fisher_information.json").write_text(json.dumps(fisher))
    build_report(results, out, config={"model": {"demo": {"luminosity": 100.0}}}, workdir=tmp_path)
    sec = _section(out.read_text())
    assert "smaller than the truth level allows" in sec and "information ratio 2" in sec
