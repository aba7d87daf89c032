"""The HTML report: built by the workflow from the toy run; sections registered; missing inputs."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from eftflow.report import build_report, registered_sections, report_section
from eftflow.report.registry import unregister
from eftflow.store.events import EventStore

pytestmark = pytest.mark.integration


class _Outline(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sections, self.images, self._in_h2, self.tags = [], 0, False, []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_h2 = tag == "h2"
        src = dict(attrs).get("src", "")
        if tag == "img" and src.startswith("data:image/png;base64,"):
            self.images += 1

    def handle_endtag(self, tag):
        self._in_h2 = False

    def handle_data(self, data):
        if self._in_h2:
            self.sections.append(data.strip())


def test_workflow_report_has_every_section_numbers_and_embedded_plots(toy_run):
    html = (toy_run / "results/report/report.html").read_text()
    outline = _Outline()
    outline.feed(html)
    assert outline.sections == [
        "Overview",
        "Setup and morphing basis",
        "Cross sections",
        "Lost generator jobs",
        "Event selection",
        "Observable distributions",
        "Training samples",
        "Fisher information",
        "Expected limits",
        "Neural estimators",
        "Statistical model",
        "Time and memory per rule",
        "Provenance",
    ]
    assert "Skipped:" not in html and "could not be built" not in html
    # morphing basis, distributions, 2 Fisher plots, the time/memory chart, all embedded
    assert outline.images >= 5 and 'src="results/' not in html
    # the toy config declares no systematics: the figure says why it has no band
    sec = html[html.index('<section id="observable-distributions">') :].split("</section>")[0]
    assert "<img" in sec and "the store has no nuisance weights" in sec
    # cross section of sample sm at benchmark sm: the mean over its jobs of Σ weights
    stores = [EventStore(toy_run / f"results/generate_events/sm/{j}.zarr") for j in (0, 1)]
    sm = float(np.mean([s.cross_sections()[0] for s in stores]))
    assert f"{sm:.4g}" in html
    # the Fisher numbers as recorded
    info = json.loads(
        (toy_run / "results/compute_fisher_information/fisher_information.json").read_text()
    )
    det = info["analyses"]["truth"]["determinant"]
    assert f"{det:.3e}" in html
    # every rule's benchmark file shows up in the time/memory table
    for rule in ("setup", "generate_events", "combine_events", "plot_distributions"):
        assert re.search(rf"<td>{rule}</td>", html), rule
    assert "No generator job was lost" in html


def test_workflow_report_shows_the_statistical_model_of_the_run(toy_run):
    """The toy run ends with its own model (model.demo): the Asimov fit, the closure gate, the
    pulls, impacts and coverage figures, as `eftflow infer` wrote them."""
    html = (toy_run / "results/report/report.html").read_text()
    start = html.index('<section id="statistical-model">')
    sec = html[start : html.index("</section>", start)]
    res = json.loads((toy_run / "results/run_inference/demo/result.json").read_text())
    assert res["data"] == "asimov" and res["closure"]["passed"]
    assert "<h3>demo</h3>" in sec and "Fit of Asimov data" in sec
    assert "Asimov closure gate: passed" in sec
    errp = res["minos"][res["poi"][0]]["errp"]
    assert errp > 0 and f"{errp:.4g}" in sec
    assert f"{res['toys']['n_toys']} toys" in sec
    for fig in ("pulls", f"impacts {res['poi'][0]}", f"coverage {res['poi'][0]}"):
        assert f"<figcaption>{fig.replace('_', ' ')}</figcaption>" in sec, fig
    for rule in ("train_ratio_ensemble", "write_model_spec", "build_model", "run_inference"):
        assert re.search(rf"<td>{rule}</td>", html), rule


def test_a_registered_section_appears_and_missing_inputs_skip(toy_run, tmp_path):
    @report_section("Later stage", order=70, key="test-later-stage")
    def later(ctx):
        data = ctx.json(ctx.path("later_stage", "summary.json"))
        return f"<p>value {data['value']}</p>"

    try:
        out = tmp_path / "r.html"
        info = build_report(toy_run / "results", out, workdir=toy_run)
        assert "Later stage" in info["sections"]
        assert "later_stage/summary.json does not exist" in info["skipped"]["Later stage"]
        assert "Time and memory per rule" in info["skipped"]  # no --benchmarks
        assert not info["failed"]
        (toy_run / "results/later_stage").mkdir()
        (toy_run / "results/later_stage/summary.json").write_text('{"value": 42}')
        info = build_report(toy_run / "results", out, workdir=toy_run)
        assert "Later stage" not in info["skipped"] and "<p>value 42</p>" in out.read_text()
        keys = [s.key for s in registered_sections()]
        assert keys.index("test-later-stage") > keys.index("fisher-information")
    finally:
        unregister("test-later-stage")


def test_cli_on_an_empty_results_directory_skips_everything(tmp_path, run_env):
    import subprocess

    (tmp_path / "results").mkdir()
    proc = subprocess.run(
        ["eftflow", "make-report", "--results", "results", "-o", "out/report.html", "--strict"],
        cwd=tmp_path,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "out/report.html").read_text()
    assert html.count("Skipped:") >= 6 and "combine_events/events.zarr does not exist" in html


def test_cli_missing_results_directory_is_a_clear_error(tmp_path, run_env):
    import subprocess

    proc = subprocess.run(
        ["eftflow", "make-report", "--results", "nope", "-o", "report.html"],
        cwd=tmp_path,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "nope" in proc.stderr and "does not exist" in proc.stderr
    assert not (tmp_path / "report.html").exists()
