"""The ``fisher`` config section (schema fragment) and the driver of ``eftflow compute-fisher-information``.

:data:`SCHEMA_FRAGMENT` belongs under ``properties:`` of ``workflow/schemas/config.schema.yaml``;
until then :func:`eftflow.sampling.config.stage_sections` validates the section with it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from eftflow.errors import ConfigError

__all__ = ["SCHEMA_FRAGMENT", "run_fisher"]

log = logging.getLogger(__name__)

SCHEMA_FRAGMENT = """
fisher:
  type: object
  additionalProperties: false
  default: {}
  description: Fisher information from the weighted events (MadMiner's FisherInformation).
  properties:
    luminosity:
      type: number
      exclusiveMinimum: 0
      default: 300000.0
      description: Integrated luminosity in pb^-1 (weights are in pb).
    theta:
      type: [array, "null"]
      items: {type: number}
      default: null
      description: Reference θ (null = all parameters 0).
    partition:
      enum: [train, validation, test, all]
      default: all
      description: Events used (MadMiner uses all).
    include_nuisance_parameters:
      type: boolean
      default: true
      description: Include the setup's nuisance parameters (θ first, then ν).
    constrain_nuisance_parameters:
      type: boolean
      default: true
      description: Add unit Gaussian constraint terms on ν and report the profiled θ information too.
    analyses:
      type: array
      default:
        - {name: truth, kind: truth}
        - {name: rate, kind: rate}
      description: Information matrices to compute.
      items:
        type: object
        additionalProperties: false
        required: [name, kind]
        properties:
          name: {type: string, description: Label of this analysis.}
          kind: {enum: [truth, rate, histo, histo2d], description: Which information.}
          observable: {type: string, default: "", description: Observable name or safe expression (histo, histo2d).}
          bins: {type: [integer, array], default: 20, description: Number of bins (quantile bins without range) or boundaries.}
          range: {type: [array, "null"], default: null, description: "[low, high] for equal bins plus under/overflow."}
          observable2: {type: string, default: "", description: Second observable (histo2d).}
          bins2: {type: [integer, array], default: 10, description: Bins of the second observable.}
          range2: {type: [array, "null"], default: null, description: Range of the second observable.}
    distribution:
      type: [object, "null"]
      default: null
      description: "Distribution of the information over an observable, {observable, bins, range} (a plot and JSON)."
"""


#: fields of FisherInformation's errors → keys of a ``fisher.analyses`` entry
_ANALYSIS_FIELDS = {
    "observable1": "observable",
    "bins1": "bins",
    "bins1.range": "range",
    "observable2": "observable2",
    "bins2": "bins2",
    "bins2.range": "range2",
}


def _config_field(field: str | None, where: str) -> str:
    """The config key path of a field named by :class:`FisherInformation` for ``where``."""
    if field in _ANALYSIS_FIELDS:
        return f"{where}.{_ANALYSIS_FIELDS[field]}"
    if field in ("theta", "luminosity", "partition"):
        return f"fisher.{field}"
    return f"{where}.{field}" if field else where


def run_fisher(
    store,
    setup_file,
    cfg: dict,
    output,
    *,
    plot_dir=None,
    n_workers: int = 1,
    scheduler=None,
    config_file: str | None = None,
) -> dict:
    """Compute the configured information matrices, write ``output`` (JSON) and optional plots.

    Errors in an analysis's settings name ``config_file`` and the key path
    (``fisher.analyses[i].bins`` ...); nothing is written before all analyses are computed.
    """
    from eftflow.errors import EftflowError
    from eftflow.inference.fisher import FisherInformation
    from eftflow.store.atomic import atomic_path

    fc = cfg["fisher"]
    fi = FisherInformation(
        store,
        setup_file,
        partition=fc["partition"],
        include_nuisance_parameters=fc["include_nuisance_parameters"],
        n_workers=n_workers,
        scheduler=scheduler,
    )
    theta = fc["theta"] if fc["theta"] is not None else [0.0] * fi.n_parameters
    lum = fc["luminosity"]
    results = {}
    for i, a in enumerate(fc["analyses"]):
        where = f"fisher.analyses[{i}]"
        try:
            results[a["name"]] = _analysis(fi, a, theta, lum, fc)
        except EftflowError as err:
            if err.file is not None:  # an input file at fault (the store): keep its field
                raise
            raise type(err)(
                err.message, file=config_file, field=_config_field(err.field, where)
            ) from None
    out = {
        "theta": list(map(float, theta)),
        "luminosity": lum,
        "partition": fc.get("partition"),
        "analyses": results,
    }
    if fc.get("distribution"):
        d = fc["distribution"]
        try:
            b, s, rate_bins, full_bins = fi.histogram_of_information(
                theta, d["observable"], d.get("bins", 20), d.get("range"), lum
            )
        except EftflowError as err:
            if err.file is not None:
                raise
            field = {"observable1": "observable", "bins1": "bins", "bins1.range": "range"}.get(
                err.field, err.field
            )
            raise type(err)(
                err.message, file=config_file, field=f"fisher.distribution.{field}"
            ) from None
        except KeyError as err:
            raise ConfigError(
                f"missing key {err.args[0]!r}", file=config_file, field="fisher.distribution"
            ) from None
        out["distribution"] = {"observable": d["observable"], "boundaries": b.tolist(), "xsec_bins_pb": s.tolist(),
                               "truth_bins": full_bins.tolist(), "rate_bins": rate_bins.tolist()}  # fmt: skip
    with atomic_path(output) as tmp:
        tmp.write_text(json.dumps(out, indent=1))
    if plot_dir is not None:
        _plots(out, fi, plot_dir)
    return out


def _analysis(fi, a: dict, theta, lum, fc: dict) -> dict:
    """One entry of ``fisher.analyses``: the information (and its profiled block) as a dict."""
    from eftflow.inference.fisher import nuisance_constraint_information, profile_information

    if a["kind"] in ("histo", "histo2d") and not a.get("observable"):
        raise ConfigError("histogram analyses need an observable", field="observable1")
    if a["kind"] == "truth":
        r = fi.truth_information(theta, lum)
    elif a["kind"] == "rate":
        r = fi.rate_information(theta, lum)
    elif a["kind"] == "histo":
        r = fi.histo_information(theta, lum, a["observable"], a["bins"], a["range"])
    else:
        if not a.get("observable2"):
            raise ConfigError("histo2d needs observable2", field="observable2")
        r = fi.histo_information_2d(
            theta,
            lum,
            a["observable"],
            a["bins"],
            a["observable2"],
            a["bins2"],
            a["range"],
            a["range2"],
        )
    entry = r.to_dict()
    k = len(r.parameter_names)
    if k > fi.n_parameters and fc["constrain_nuisance_parameters"]:
        c = nuisance_constraint_information(fi.n_parameters, k - fi.n_parameters)
        p, pc = profile_information(r.information + c, list(range(fi.n_parameters)), r.covariance)
        entry["profiled"] = {"information": p.tolist(), "covariance": pc.tolist()}
    return entry


def _plots(out: dict, fi, plot_dir) -> None:
    from eftflow.plotting.fisher import (
        plot_distribution_of_information,
        plot_fisher_information_contours_2d,
        plot_fisherinfo_barplot,
    )
    from eftflow.store.atomic import atomic_path

    with atomic_path(plot_dir) as tmp:
        tmp.mkdir(parents=True)
        names = list(out["analyses"])
        n_p = fi.n_parameters
        infos, covs = [], []
        for n in names:
            a = out["analyses"][n]
            info = np.asarray(
                a["profiled"]["information"] if "profiled" in a else a["information"]
            )[:n_p, :n_p]
            cov = np.asarray(a["profiled"]["covariance"] if "profiled" in a else a["covariance"])[
                :n_p, :n_p, :n_p, :n_p
            ]
            infos.append(info)
            covs.append(cov)
        lumi = out.get("luminosity")
        plot_fisherinfo_barplot(
            infos, names, luminosity=lumi, output=Path(tmp) / "fisher_barplot.png"
        )
        if n_p >= 2:
            # the figure names a singular matrix (no closed contour) in its legend: all are passed
            usable = [i for i, m in enumerate(infos) if np.all(np.isfinite(m[:2, :2]))]
            plot_fisher_information_contours_2d(
                [infos[i][:2, :2] for i in usable], [covs[i][:2, :2, :2, :2] for i in usable], [names[i] for i in usable],
                parameter_names=fi.parameter_names[:2], center=out["theta"][:2], luminosity=lumi,
                output=Path(tmp) / "fisher_contours.png",
            )  # fmt: skip
        if "distribution" in out:
            d = out["distribution"]
            plot_distribution_of_information(d["boundaries"], d["xsec_bins_pb"], np.asarray(d["truth_bins"]),
                                             np.asarray(d["rate_bins"]), observable=d["observable"],
                                             output=Path(tmp) / "information_distribution.png")  # fmt: skip
