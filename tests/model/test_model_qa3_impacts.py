"""Impacts stopped by the POI's bound are flagged (they are lower limits of their size)."""

from __future__ import annotations

import copy
import logging

from eftflow.inference.model import BinnedRegion, StatModel, from_pyhf
from eftflow.inference.model.inference import ModelFitter

from .test_model_inference import WS


def test_impacts_at_the_poi_bound_are_flagged(caplog):
    ws = copy.deepcopy(WS)
    # a background normalisation of +100 %/−50 %: at ν = +1 the background alone exceeds the
    # data in both bins, so μ stops at its lower bound 0
    ws["channels"][0]["samples"][1]["modifiers"][0]["data"] = {"hi": 2.0, "lo": 0.5}
    model = StatModel([BinnedRegion("sr", from_pyhf(ws))], poi="mu", device="cpu")
    fit = ModelFitter(model, model.asimov({"mu": 1.0}), tol=1e-6)
    fit.run()
    caplog.set_level(logging.WARNING)
    rows = {r["name"]: r for r in fit.impacts("mu")}
    b = rows["b_norm"]
    assert abs(b["prefit_up"] + 1.0) < 1e-6  # μ̂ = 1 → the bound 0
    assert b["at_bound"] == ["prefit_up"]
    assert rows["s_norm"]["at_bound"] == []  # ±10 % on the signal: μ moves freely
    assert any(
        "lower limits" in r.getMessage() and "b_norm" in r.getMessage() for r in caplog.records
    )


def test_impact_plot_marks_bounded_impacts():
    from eftflow.plotting.model import plot_impacts

    rows = [
        {"name": "a", "prefit_up": -1.0, "prefit_down": 0.5, "postfit_up": -0.2,
         "postfit_down": 0.2, "at_bound": ["prefit_up"]},
        {"name": "b", "prefit_up": 0.1, "prefit_down": -0.1, "postfit_up": 0.05,
         "postfit_down": -0.05, "at_bound": []},
    ]  # fmt: skip
    ax = plot_impacts(rows, "mu").axes[0]
    marks = [t for t in ax.texts if t.get_text() == "≥"]
    assert len(marks) == 1 and marks[0].xy == (-1.0, 1)  # row "a" is drawn on top (y = 1)
    assert "bound of mu" in ax.get_title()
