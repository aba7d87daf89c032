"""Scale systematics: setup → generator weights (builtin, MadGraph's format) → nuisance weights.

Closure tests: the builtin generator's variation weights are recomputed from each event's own
``#pdf`` line with an independent Pythia PDF; the nuisance columns of the shower, the parton
source and the event store are w_ref · w_var / XWGTUP event by event; the fake MadGraph's
systematics weights (a known formula) come out of the whole chain.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from eftflow.cli import main
from eftflow.errors import BackendError, ConfigError, InputError
from eftflow.generate.lhe import LHEReader, read_lhe_header
from eftflow.generate.lhe_header import parse_header
from eftflow.generate.systematics import (
    lhe_nuisance_weights,
    nuisance_columns,
    nuisance_weight_ids,
    scale_points,
    scale_variations,
)
from eftflow.setup import EFTSetup
from eftflow.store.events import EventStore

NU = "mu_var_nuisance_param_0"


def _dy_setup(*systematics) -> EFTSetup:
    s = EFTSetup()
    s.add_parameter("eft", 1, "W", parameter_range=(-1e-3, 1e-3))
    s.add_benchmark({"W": 0.0}, "sm", verbose=False)
    s.add_benchmark({"W": 1e-3}, "w_pos", verbose=False)
    s.set_morphing(max_overall_power=2, seed=1)
    for kind, name, kw in systematics:
        s.add_systematics(kind, name, **kw)
    return s


MU = ("scale", "mu_var", {"scale": "mu", "scale_variations": (0.5, 1.0, 2.0)})
LUMI = ("norm", "lumi", {"norm_variation": 1.02})


# --- setup -------------------------------------------------------------------------------------
def test_scale_systematic_defines_madminer_nuisance_parameter(tmp_path):
    s = _dy_setup(MU, ("scale", "muf_up", {"scale": "muf", "scale_variations": [2.0]}))
    nu = s.nuisance_parameters[NU]
    assert (nu.benchmark_positive, nu.benchmark_negative) == (
        f"{NU}_benchmark_0",
        f"{NU}_benchmark_1",
    )
    assert s.benchmarks[f"{NU}_benchmark_0"].is_nuisance
    one = s.nuisance_parameters["muf_up_nuisance_param_0"]
    assert one.benchmark_negative is None  # one variation: one-sided, as MadMiner
    # MadMiner: the last factor is nu = +1, the first nu = -1
    assert scale_points(s.systematics["mu_var"]) == [(2.0, 2.0), (0.5, 0.5)]
    assert scale_points(s.systematics["muf_up"]) == [(1.0, 2.0)]
    assert scale_variations(s) == [(2.0, 2.0), (0.5, 0.5), (1.0, 2.0)]
    assert [b.name for b in s.physics_benchmarks()][:2] == ["sm", "w_pos"]
    s.save(tmp_path / "s.h5")
    back = EFTSetup.from_file(tmp_path / "s.h5")
    assert back.nuisance_parameters == s.nuisance_parameters
    assert back.systematics == s.systematics


@pytest.mark.parametrize("bad", [(0.5, 0.0), (-1.0, 2.0), ("x",), (), (float("nan"),)])
def test_bad_scale_variations_are_refused(bad):
    with pytest.raises(ConfigError) as err:
        _dy_setup(("scale", "s", {"scale_variations": bad}))
    assert err.value.field == "systematics.s.scale_variations"


def test_reference_benchmark_is_the_flagged_one():
    s = _dy_setup()
    assert s.reference_benchmark == "sm"
    s.benchmarks["w_pos"] = type(s.benchmarks["w_pos"])(
        "w_pos", s.benchmarks["w_pos"].values, is_reference=True
    )
    assert s.reference_benchmark == "w_pos"


# --- matching LHE weights -------------------------------------------------------------------
#: MadGraph 3.5's systematics banner with dynamical-scale entries (--dyn=-1,1,2,3,4), a PDF group
#: and the reweighting group
MG_INITRWGT = """<initrwgt>
<weightgroup name="Central scale variation" combine="envelope">
<weight id="1" MUR="0.5"  MUF="0.5"  PDF="247000" > MUR=0.5 MUF=0.5  </weight>
<weight id="2" MUR="0.5"  MUF="0.5"  DYN_SCALE="1"  PDF="247000" > MUR=0.5 MUF=0.5 dyn_scale_choice=sum pt  </weight>
<weight id="3" MUR="0.5"  MUF="1.0"  PDF="247000" > MUR=0.5  </weight>
<weight id="4" MUR="0.5"  MUF="2.0"  PDF="247000" > MUR=0.5 MUF=2.0  </weight>
<weight id="5" MUR="1.0"  MUF="0.5"  PDF="247000" > MUF=0.5  </weight>
<weight id="6" MUR="1.0"  MUF="2.0"  PDF="247000" > MUF=2.0  </weight>
<weight id="7" MUR="2.0"  MUF="0.5"  PDF="247000" > MUR=2.0 MUF=0.5  </weight>
<weight id="8" MUR="2.0"  MUF="1.0"  PDF="247000" > MUR=2.0  </weight>
<weight id="9" MUR="2.0"  MUF="2.0"  DYN_SCALE="3"  PDF="247000" > MUR=2.0 MUF=2.0 dyn_scale_choice=HT/2  </weight>
<weight id="10" MUR="2.0"  MUF="2.0"  PDF="247000" > MUR=2.0 MUF=2.0  </weight>
</weightgroup> # scale
<weightgroup name="NNPDF23_lo_as_0130_qed" combine="replicas"> # 247000: LO QCD + LO QED PDF set
<weight id="11" MUR="1.0" MUF="1.0" PDF="247000" >  </weight>
<weight id="12" MUR="1.0" MUF="1.0" PDF="247001" > PDF=247000 MemberID=1 </weight>
</weightgroup> # PDFSET -> PDF
<weightgroup name="CT10" combine="hessian">
<weight id="13" MUR="2.0" MUF="2.0" PDF="10800" > MUR=2.0 MUF=2.0 PDF=10800 </weight>
</weightgroup>
<weightgroup name='mg_reweighting' weight_name_strategy='includeIdInWeightName'>
<weight id='sm'>set param_card dim6 2 0.0 # orig: 0.0
</weight>
</weightgroup>
</initrwgt>"""

INIT = "<init>\n2212 2212 6.5e+03 6.5e+03 0 0 247000 247000 -4 1\n1.0 0.01 1.0 1\n</init>\n"


def _header(initrwgt: str):
    text = f'<LesHouchesEvents version="3.0">\n<header>\n{initrwgt}\n</header>\n{INIT}'
    return parse_header(text)


@pytest.mark.parametrize(
    "scale, plus, minus", [("mu", "10", "1"), ("mur", "8", "3"), ("muf", "6", "5")]
)
def test_weights_are_matched_by_mur_muf(scale, plus, minus):
    s = _dy_setup(("scale", "mu_var", {"scale": scale, "scale_variations": (0.5, 1.0, 2.0)}))
    h = _header(MG_INITRWGT)
    ids = nuisance_weight_ids(s, h.weights, central_pdf=247000)
    # DYN_SCALE variations (2, 9) and other PDF sets (13) are never taken
    assert ids == {f"{NU}_benchmark_0": plus, f"{NU}_benchmark_1": minus}


def test_weights_outside_their_group_are_still_found():
    """MadGraph 2.6.5+ can misplace a </weightgroup> line: match on attributes, not nesting."""
    broken = MG_INITRWGT.replace(
        '<weightgroup name="Central scale variation" combine="envelope">\n', ""
    ).replace("</weightgroup> # scale\n", "")
    s = _dy_setup(MU)
    assert nuisance_weight_ids(s, _header(broken).weights, central_pdf=247000) == {
        f"{NU}_benchmark_0": "10",
        f"{NU}_benchmark_1": "1",
    }


def test_missing_scale_weights_name_what_is_needed(tmp_path):
    s = _dy_setup(("scale", "mu_var", {"scale": "mu", "scale_variations": (0.25, 1.0, 4.0)}))
    with pytest.raises(InputError, match=r"MUR=4 MUF=4") as err:
        nuisance_weight_ids(s, _header(MG_INITRWGT).weights, central_pdf=247000, file="x.lhe")
    assert err.value.field == "initrwgt" and err.value.file == "x.lhe"
    assert "(2, 2)" in str(err.value)  # what the file has
    with pytest.raises(InputError, match="no scale-variation weights"):
        nuisance_weight_ids(s, [], file="x.lhe")
    assert nuisance_weight_ids(_dy_setup(LUMI), []) == {}  # no scale systematics: nothing asked


def test_nuisance_columns_apply_the_event_factor_to_the_reference():
    var = np.array([[2.0, 0.5], [0.0, 0.0], [3.0, 1.0]])
    nominal = np.array([1.0, 0.0, 2.0])
    ref = np.array([10.0, 5.0, 4.0])
    out = nuisance_columns(var, nominal, ref)
    np.testing.assert_allclose(out, [[20.0, 5.0], [0.0, 0.0], [6.0, 2.0]])
    with pytest.raises(InputError, match="event 11.*nominal weight") as err:
        nuisance_columns(np.array([[1.0], [1.0]]), np.array([1.0, 0.0]), ref[:2], first_event=10)
    assert err.value.field == "rwgt"
    with pytest.raises(InputError, match="event 1: non-finite"):
        nuisance_columns(np.array([[1.0], [np.nan]]), np.ones(2), np.ones(2))
    with pytest.raises(InputError, match="event 5: .* must keep the weight's sign"):
        nuisance_columns(np.array([[1.0], [-0.5]]), np.ones(2), np.ones(2), first_event=4)
    # negative weights (NLO) are fine as long as the variation keeps the sign
    np.testing.assert_allclose(
        nuisance_columns(np.array([[-1.2]]), np.array([-1.0]), np.array([-3.0])), [[-3.6]]
    )


# --- builtin generator ------------------------------------------------------------------------
pythia8mc = pytest.importorskip("pythia8mc")


@pytest.fixture(scope="module")
def builtin_lhe(tmp_path_factory):
    from eftflow.generate.base import GenerationJob
    from eftflow.generate.builtin import BuiltinGenerator

    d = tmp_path_factory.mktemp("scale")
    out = {}
    for key, setup in (("plain", _dy_setup(LUMI)), ("scale", _dy_setup(MU, LUMI))):
        path = d / f"{key}.lhe.gz"
        BuiltinGenerator().generate(GenerationJob("mll_200_500", 0, 60, 23, path, setup))
        setup.save(d / f"{key}.h5")
        out[key] = (path, setup, d / f"{key}.h5")
    return out


def _events(path):
    with gzip.open(path, "rt") as fh:
        text = fh.read()
    return text, text.split("<event>")[1:]


def test_builtin_scale_weights_close_on_an_independent_pdf(builtin_lhe):
    path, setup, _ = builtin_lhe["scale"]
    head = read_lhe_header(path)
    group = [w for w in head.weights if w.group == "Central scale variation"]
    assert [(w.id, w.attrs["MUR"], w.attrs["MUF"], w.attrs["PDF"]) for w in group] == [
        ("scale_1", "2.0", "2.0", "247000"),
        ("scale_2", "0.5", "0.5", "247000"),
    ]
    p = pythia8mc.Pythia("", False)
    for line in ("Beams:eCM = 13000", "WeakSingleBoson:ffbar2gmZ = on", "Print:quiet = on"):
        p.readString(line)
    assert p.init()
    pdf = p.getPDFPtr(2212)
    _, events = _events(path)
    checked = 0
    for ev in events:
        pdf_line = next(ln for ln in ev.splitlines() if ln.startswith("#pdf"))
        _, id1, id2, x1, x2, q, xf1, xf2 = pdf_line.split()
        id1, id2, x1, x2, q = int(id1), int(id2), float(x1), float(x2), float(q)
        # the PDF is the one Pythia generated with: its xf at the event's Q is on the #pdf line
        assert pdf.xf(id1, x1, q * q) == pytest.approx(float(xf1), rel=1e-8)
        assert pdf.xf(id2, x2, q * q) == pytest.approx(float(xf2), rel=1e-8)
        w = {
            m.split("'")[1]: float(m.split(">")[1].split("<")[0])
            for m in ev.split("<rwgt>")[1].split("</rwgt>")[0].strip().splitlines()
        }
        xwgtup = float(ev.splitlines()[1].split()[2])
        nominal = pdf.xf(id1, x1, q * q) * pdf.xf(id2, x2, q * q)
        for wid, k in (("scale_1", 2.0), ("scale_2", 0.5)):
            varied = pdf.xf(id1, x1, (k * q) ** 2) * pdf.xf(id2, x2, (k * q) ** 2)
            # (x and Q on the #pdf line have 11 digits; the weights 16, XWGTUP 11)
            assert w[wid] / w["sm"] == pytest.approx(varied / nominal, rel=1e-9)
        assert w["sm"] == pytest.approx(xwgtup, rel=1e-10)
        checked += 1
    assert checked == 60


def test_inspect_shows_the_weight_groups_of_an_lhe_file(builtin_lhe):
    from eftflow.inspect import format_summary, inspect_path

    path, _, _ = builtin_lhe["scale"]
    info = inspect_path(path, cross_sections=True)
    assert info["kind"] == "LHE file" and info["generator"] == "builtin"
    scale = info["weight_groups"]["Central scale variation"]
    assert scale["scale_variations"] == ["(2.0, 2.0)", "(0.5, 0.5)"]
    assert info["weight_groups"]["eftflow"]["n_weights"] == 3  # sm, w_pos, the basis point
    assert info["cross_sections_pb"] == pytest.approx(LHEReader(path).cross_sections())
    assert "scale_variations=(2.0, 2.0), (0.5, 0.5)" in format_summary(info)


def test_builtin_scale_weights_leave_the_events_unchanged(builtin_lhe):
    """Evaluating the PDF for the variations does not touch generation: same events, same weights."""
    (_, plain), (_, scale) = _events(builtin_lhe["plain"][0]), _events(builtin_lhe["scale"][0])
    assert len(plain) == len(scale) == 60
    for a, b in zip(plain, scale):
        assert a.split("<rwgt>")[0] == b.split("<rwgt>")[0]
        assert b.split("<rwgt>")[1].startswith(a.split("<rwgt>")[1].split("</rwgt>")[0])


def _lhe_factors(path, ids):
    r = LHEReader(path)
    ev = r.read()
    return np.stack([ev.weight(i) / ev.xwgtup for i in ids], axis=1)


def test_shower_and_parton_chain_carry_scale_nuisance_weights(builtin_lhe, tmp_path):
    from eftflow.shower.pythia import shower_lhe
    from eftflow.store.particles import ParticleStore

    path, setup, setup_file = builtin_lhe["scale"]
    nu = lhe_nuisance_weights(setup, path)
    assert nu.scale == {f"{NU}_benchmark_0": "scale_1", f"{NU}_benchmark_1": "scale_2"}
    assert nu.names == [f"{NU}_benchmark_0", f"{NU}_benchmark_1"] and not nu.pdf
    factors = _lhe_factors(path, ["scale_1", "scale_2"])
    assert np.all(factors > 0.5) and np.all(factors < 1.5) and np.ptp(factors) > 0
    shower_lhe(
        path, tmp_path / "sh.zarr", ["sm", "w_pos"], seed=3, config={"mode": "parton"},
        nuisance=nu, reference="w_pos",
    )  # fmt: skip
    st = ParticleStore(tmp_path / "sh.zarr")
    assert st.benchmark_names == ["sm", "w_pos", *nu.names]
    w = np.concatenate([np.asarray(c["weights"]) for c in st.iter_chunks(100)])
    assert len(w) == 60  # parton mode drops nothing: events stay aligned with the file
    np.testing.assert_allclose(w[:, 2:] / w[:, 1:2], factors, rtol=1e-12)
    # the CLI: the parton-level detector on the LHE file, then the analysis
    objects, events = tmp_path / "objects.zarr", tmp_path / "events.zarr"
    cfg = {"seed": 2, "detector": {"backend": "parton", "chunk_size": 25}}
    assert main(["simulate-detector", str(path), "--setup", str(setup_file), "--config",
                 json.dumps(cfg), "-o", str(objects)]) == 0  # fmt: skip
    ana = {
        "seed": 2,
        "analysis": {"observables": [{"name": "m_ll", "definition": "(l[0] + l[1]).m"}]},
    }
    assert main(["analyse-events", str(objects), "--setup", str(setup_file), "--config",
                 json.dumps(ana), "-o", str(events)]) == 0  # fmt: skip
    store = EventStore(events)
    names = store.nuisance_benchmark_names
    assert names == sorted([*nu.names, "lumi_nuisance_param_0_benchmark_0"])
    ref = store.read("weights")[:, store.benchmark_names.index("sm")]
    nw = store.read("nuisance_weights")
    np.testing.assert_allclose(nw[:, names.index("lumi_nuisance_param_0_benchmark_0")], 1.02 * ref)
    got = np.stack([nw[:, names.index(b)] / ref for b in nu.names], axis=1)
    np.testing.assert_allclose(got, factors, rtol=1e-12)  # no cuts: every event kept, in order
    # the Fisher information on the scale nuisance at nu = 0: L Σ w a², a = ½ ln(w+/w-)
    from eftflow.inference.fisher import FisherInformation

    fi = FisherInformation(events, setup_file).truth_information([0.0], luminosity=1000.0)
    assert fi.parameter_names == ["W", NU, "lumi_nuisance_param_0"]
    a = 0.5 * np.log(factors[:, 0] / factors[:, 1])
    assert fi.information[1, 1] == pytest.approx(1000.0 * np.sum(ref * a * a), rel=1e-10)
    assert fi.information[2, 2] == pytest.approx(1000.0 * ref.sum() * np.log(1.02) ** 2, rel=1e-10)


def test_shower_refuses_a_file_without_the_scale_weights(builtin_lhe):
    path, _, _ = builtin_lhe["plain"]
    with pytest.raises(InputError, match="needs a weight with MUR=2 MUF=2") as err:
        lhe_nuisance_weights(_dy_setup(MU), path)
    assert err.value.file == str(path)


def test_analysis_keeps_the_nuisance_parameters_it_has_weights_for(caplog):
    from eftflow.analysis.analyse import benchmark_columns

    s = _dy_setup(MU, LUMI)
    names = ["sm", "w_pos", "morphing_basis_vector_2"]
    with caplog.at_level(logging.WARNING):
        _, _, cols, nuis = benchmark_columns(names, s)
    assert nuis == ["lumi_nuisance_param_0_benchmark_0"] and cols == [(0, 1.02)]
    assert f"nuisance parameter {NU} left out" in caplog.text
    _, _, cols, nuis = benchmark_columns([*names, f"{NU}_benchmark_1", f"{NU}_benchmark_0"], s)
    assert nuis == sorted([*nuis]) and len(nuis) == 3
    assert dict(zip(nuis, cols))[f"{NU}_benchmark_0"] == (4, 1.0)


# --- MadGraph (the fake's systematics module) ----------------------------------------------------
def test_madgraph_systematics_weights_become_nuisance_weights(tmp_path, monkeypatch):
    from eftflow.detector.sources import lhe_source
    from eftflow.generate.madgraph import MadGraphGenerator

    sys.path.insert(0, str(Path(__file__).parent / "fake_mg5"))
    from harness import eft_setup, install_fake_mg5, mg_job

    mg = install_fake_mg5(tmp_path / "MG5_aMC_v3_5_7")
    setup = eft_setup(1, extra={"c1_p": {"c1": 1.0}})
    setup.add_systematics("scale", "mu_var", scale="mu", scale_variations=(0.5, 1.0, 2.0))
    # without LHAPDF MadGraph skips its systematics module: an error, not a file without weights
    with pytest.raises(BackendError, match="skipped its systematics module"):
        MadGraphGenerator().generate(mg_job(tmp_path, mg, setup, n_events=40))
    monkeypatch.setenv("FAKE_MG5_LHAPDF", "1")
    monkeypatch.setenv("FAKE_MG5_WEIGHT_DIGITS", "15")
    res = MadGraphGenerator().generate(mg_job(tmp_path, mg, setup, n_events=40, job=1))
    nu = lhe_nuisance_weights(setup, res.output)
    assert nu.scale == {f"{NU}_benchmark_0": "8", f"{NU}_benchmark_1": "1"}  # (2, 2), (0.5, 0.5)
    src = lhe_source(res.output, ["sm", "c1_p"], nuisance=nu, reference=setup.reference_benchmark)
    assert src.benchmark_names == ["sm", "c1_p", *nu.names]
    chunk = next(src.iter_chunks(100))
    w = np.asarray(chunk["weights"])
    ev = LHEReader(res.output).read()
    x = ev.pz[2::4] / ev.e[2::4]  # the mu+ of each event (e+ e- -> mu+ mu-)
    for col, k in ((2, 2.0), (3, 0.5)):  # the fake's stand-in: 1 + 0.1 ln(MUR) x + 0.05 ln(MUF)
        want = 1 + 0.1 * math.log(k) * x + 0.05 * math.log(k)
        np.testing.assert_allclose(w[:, col] / w[:, 0], want, rtol=1e-6)  # XWGTUP: 8 digits
    # an event store of these weights: MadMiner reads its nuisance parameter from the exported
    # file and its Fisher information (with the nuisance) equals ours
    pytest.importorskip("madminer")
    from madminer.fisherinformation import FisherInformation as MMFisher

    from eftflow.inference.fisher import FisherInformation
    from eftflow.store.events import EventStoreWriter
    from eftflow.store.madminer_io import export_madminer

    phys = [b.name for b in setup.physics_benchmarks()]
    src = lhe_source(res.output, phys, nuisance=nu, reference=setup.reference_benchmark)
    w = np.asarray(next(src.iter_chunks(100))["weights"])
    setup.save(tmp_path / "setup.h5")
    nb = len(phys)
    with EventStoreWriter(tmp_path / "ev.zarr", ["x"], phys, nuisance_names=nu.names) as wr:
        wr.append(observables=x[:, None], weights=w[:, :nb], nuisance_weights=w[:, nb:],
                  sampling_benchmark=np.zeros(len(x), np.int64))  # fmt: skip
    export_madminer(tmp_path / "ev.zarr", tmp_path / "setup.h5", tmp_path / "ev.h5")
    logging.getLogger("madminer").setLevel(logging.WARNING)
    mm, _ = MMFisher(str(tmp_path / "ev.h5")).truth_information(
        np.array([0.3]), luminosity=100.0, include_nuisance_parameters=True
    )
    ours = FisherInformation(tmp_path / "ev.zarr", setup).truth_information([0.3], 100.0)
    assert ours.parameter_names == ["c1", NU]
    np.testing.assert_allclose(ours.information, mm, rtol=1e-8)
    assert ours.information[1, 1] > 0


# --- statistics: the binned model ---------------------------------------------------------------
def test_binned_model_quadratic_nuisance_is_exact_at_plus_minus_one_and_differentiable():
    from eftflow.inference.asimov import BinnedPoissonModel, Systematic

    rp, rm = np.array([1.10, 0.95, 1.30]), np.array([0.92, 1.04, 0.80])  # rates at nu = ±1
    lin, quad = 0.5 * np.log(rp / rm), 0.5 * np.log(rp * rm)
    y = np.array([10.0, 20.0, 5.0])
    model = BinnedPoissonModel(
        lambda t: y * t[0], n_bins=3, samples=["signal"],
        systematics=[Systematic("s", {"signal": np.expm1(lin)}, {"signal": quad}),
                     Systematic("n", {"signal": 0.02})],
    )  # fmt: skip
    np.testing.assert_allclose(model.expected_main([1.0], [1.0, 0.0]), y * rp, rtol=1e-13)
    np.testing.assert_allclose(model.expected_main([1.0], [-1.0, 0.0]), y * rm, rtol=1e-13)
    np.testing.assert_allclose(model.expected_main([1.0], [0.0, 1.0]), y * 1.02, rtol=1e-13)
    data = model.make_data([12.0, 18.0, 7.0])
    nu, h = np.array([0.3, -0.7]), 1e-5
    ll = lambda v: model.loglik_main(data, [1.0], v)  # noqa: E731
    grad = [(ll(nu + h * e) - ll(nu - h * e)) / (2 * h) for e in np.eye(2)]
    np.testing.assert_allclose(model.grad_nu_main(data, [1.0], nu), grad, rtol=1e-6)
    h = 1e-3  # second differences: a larger step (rounding), the error is O(h²)
    hess = [
        [(ll(nu + h * (ei + ej)) - ll(nu + h * (ei - ej)) - ll(nu - h * (ei - ej)) + ll(nu - h * (ei + ej)))
         / (4 * h * h) for ej in np.eye(2)]
        for ei in np.eye(2)
    ]  # fmt: skip
    np.testing.assert_allclose(model.hess_nu_main(data, [1.0], nu), hess, rtol=1e-5, atol=1e-7)


def _shape_store(path, setup, n: int, seed: int, chunk: int):
    """An event store of one observable x ~ U(0, 1) with the scale nuisance's shape
    w± = w_sm · (1 + 0.2 x, 1 − 0.1 x) and the lumi column 1.02 w_sm; returns (x, w, up, down)."""
    from eftflow.store.events import EventStoreWriter

    x = np.random.default_rng(seed).uniform(0.0, 1.0, n)
    w = np.column_stack([np.full(n, 1e-3), 1e-3 * (1 + x), 1e-3 * (1 + 2 * x)])  # sm, w_pos, basis
    up, down = 1.0 + 0.2 * x, 1.0 - 0.1 * x  # a shape: larger at large x
    nuis = sorted([f"{NU}_benchmark_0", f"{NU}_benchmark_1", "lumi_nuisance_param_0_benchmark_0"])
    cols = {f"{NU}_benchmark_0": w[:, 0] * up, f"{NU}_benchmark_1": w[:, 0] * down,
            "lumi_nuisance_param_0_benchmark_0": 1.02 * w[:, 0]}  # fmt: skip
    names = [b.name for b in setup.physics_benchmarks()]
    with EventStoreWriter(path, ["x"], names, chunk_size=chunk, nuisance_names=nuis) as wr:
        wr.append(observables=x[:, None], weights=w, sampling_benchmark=np.zeros(n, np.int64),
                  nuisance_weights=np.column_stack([cols[c] for c in nuis]))  # fmt: skip
    return x, w, up, down


def test_histogram_likelihood_takes_scale_shapes_from_the_store(tmp_path):
    from eftflow.inference.histogram_likelihood import histogram_likelihood

    s = _dy_setup(MU, LUMI)
    path = tmp_path / "ev.zarr"
    x, w, up, down = _shape_store(path, s, 4000, 4, 1000)
    hl = histogram_likelihood(
        path, s, observable="x", bins=[0.25, 0.5, 0.75], histrange=None, partition="all",
        luminosity=1000.0,
    )  # fmt: skip
    assert [sy.name for sy in hl.systematics] == [NU, "lumi_nuisance_param_0"]
    idx = np.searchsorted([0.25, 0.5, 0.75], x)
    s0 = 1000.0 * np.bincount(idx, w[:, 0], minlength=4)
    sp = 1000.0 * np.bincount(idx, w[:, 0] * up, minlength=4)
    sm = 1000.0 * np.bincount(idx, w[:, 0] * down, minlength=4)
    theta0 = [0.0]
    np.testing.assert_allclose(hl.model.expected_main(theta0, [0.0, 0.0]), s0, rtol=1e-12)
    np.testing.assert_allclose(hl.model.expected_main(theta0, [1.0, 0.0]), sp, rtol=1e-12)
    np.testing.assert_allclose(hl.model.expected_main(theta0, [-1.0, 0.0]), sm, rtol=1e-12)
    np.testing.assert_allclose(hl.model.expected_main(theta0, [0.0, 1.0]), 1.02 * s0, rtol=1e-12)
    # the shape is a shape: the highest bin moves more than the lowest
    assert sp[3] / s0[3] - 1 > 2 * (sp[0] / s0[0] - 1)


# --- PDF sets ------------------------------------------------------------------------------------
PDF_GROUPS = """<initrwgt>
<weightgroup name="Central scale variation" combine="envelope">
<weight id="1" MUR="2.0" MUF="2.0" PDF="10800" > MUR=2.0 MUF=2.0 </weight>
</weightgroup>
<weightgroup name="CT10" combine="hessian"> # 10800
<weight id="4" MUR="1.0" MUF="1.0" PDF="10802" >  </weight>
<weight id="2" MUR="1.0" MUF="1.0" PDF="10800" >  </weight>
<weight id="3" MUR="1.0" MUF="1.0" PDF="10801" >  </weight>
<weight id="5" MUR="2.0" MUF="2.0" PDF="10801" > MUR=2.0 MUF=2.0 </weight>
</weightgroup>
<weightgroup name="NNPDF31_nnlo_as_0118_mc" combine="replicas+as"> # 303400
<weight id="10" PDF="303400" >  </weight>
<weight id="11" PDF="303401" >  </weight>
<weight id="12" PDF="303402" >  </weight>
<weight id="13" PDF="303403" >  </weight>
<weight id="14" PDF="303404" >  </weight>
<weight id="15" PDF="303405" >  </weight>
</weightgroup>
<weightgroup name="odd" combine="envelope">
<weight id="20" PDF="1" ></weight><weight id="21" PDF="2" ></weight><weight id="22" PDF="3" ></weight>
</weightgroup>
</initrwgt>"""


def test_pdf_members_are_found_ordered_and_checked():
    from eftflow.generate.systematics import pdf_members

    ws = _header(PDF_GROUPS).weights
    # by name or by LHAPDF id, ordered by PDF id; the scale variation of a member is not one
    assert pdf_members(ws, "CT10") == ("hessian", ["2", "3", "4"])
    assert pdf_members(ws, "ct10") == ("hessian", ["2", "3", "4"])
    assert pdf_members(ws, "10800") == ("hessian", ["2", "3", "4"])
    # +as: the last two members (alpha_s variations) are left out
    assert pdf_members(ws, "NNPDF31_nnlo_as_0118_mc") == ("replicas", ["10", "11", "12", "13"])
    with pytest.raises(InputError, match="no weight group of the PDF set 'MSTW'") as err:
        pdf_members(ws, "MSTW", file="f.lhe")
    assert err.value.field == "initrwgt" and "CT10" in str(err.value)
    with pytest.raises(InputError, match="combine='envelope'"):
        pdf_members(ws, "odd")
    short = PDF_GROUPS.replace('<weight id="4" MUR="1.0" MUF="1.0" PDF="10802" >  </weight>\n', "")
    with pytest.raises(InputError, match="2 members: too few"):
        pdf_members(_header(short).weights, "CT10")


def test_pdf_relative_uncertainty_formulas():
    from eftflow.generate.systematics import pdf_relative_uncertainty

    m = np.array([[2.0, 2.2, 1.8, 2.1, 2.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(
        pdf_relative_uncertainty(m, "replicas"), [np.std([2.2, 1.8, 2.1, 2.0], ddof=1) / 2, 0]
    )
    np.testing.assert_allclose(
        pdf_relative_uncertainty(m, "symmhessian"), [math.sqrt(0.04 + 0.04 + 0.01 + 0) / 2, 0]
    )
    np.testing.assert_allclose(
        pdf_relative_uncertainty(m, "hessian"), [0.5 * math.sqrt(0.4**2 + 0.1**2) / 2, 0]
    )


@pytest.mark.parametrize("combine", ["hessian", "replicas"])
def test_madgraph_pdf_weights_become_one_two_sided_nuisance(tmp_path, monkeypatch, combine):
    from eftflow.generate.madgraph import MadGraphGenerator

    sys.path.insert(0, str(Path(__file__).parent / "fake_mg5"))
    from harness import eft_setup, install_fake_mg5, mg_job

    mg = install_fake_mg5(tmp_path / "MG5_aMC_v3_5_7")
    setup = eft_setup(1)
    setup.add_systematics("pdf", "ct", pdf_variation="CT10")
    setup.add_systematics("scale", "mu_var", scale="mu", scale_variations=(0.5, 1.0, 2.0))
    pdf_nu = setup.nuisance_parameters["ct_nuisance_param_0"]
    assert (pdf_nu.benchmark_positive, pdf_nu.benchmark_negative) == (
        "ct_nuisance_param_0_benchmark_0",
        "ct_nuisance_param_0_benchmark_1",
    )
    monkeypatch.setenv("FAKE_MG5_LHAPDF", "1")
    monkeypatch.setenv("FAKE_MG5_WEIGHT_DIGITS", "15")
    monkeypatch.setenv("FAKE_MG5_PDF_COMBINE", combine)
    res = MadGraphGenerator().generate(mg_job(tmp_path, mg, setup, n_events=30))
    with gzip.open(res.output, "rt") as fh:
        assert "'--pdf=CT10'" in fh.read(20000)  # asked for by the run card
    nu = lhe_nuisance_weights(setup, res.output)
    assert nu.pdf["ct_nuisance_param_0_benchmark_0"][:2] == (
        combine,
        [str(i) for i in range(9, 18)],
    )
    from eftflow.inspect import inspect_path

    groups = inspect_path(res.output)["weight_groups"]
    assert groups["CT10"] == {
        "combine": combine,
        "n_weights": 9,
        "weight_ids": ["9", "10", "11", "12", "…", "16", "17"],
        "pdf_members": "9 (PDF 10800 … 10808)",
    }
    assert len(groups["Central scale variation"]["scale_variations"]) == 8
    assert nu.names == [
        "ct_nuisance_param_0_benchmark_0",
        "ct_nuisance_param_0_benchmark_1",
        f"{NU}_benchmark_0",
        f"{NU}_benchmark_1",
    ]
    w, x, members = _weights_and_fake_members(res.output, nu)
    if combine == "hessian":
        r = 0.02 * np.abs(x) * math.sqrt(1 + 4 + 9 + 16)
    else:
        r = members.std(axis=1, ddof=1)
    np.testing.assert_allclose(w[:, 1] / w[:, 0], np.exp(r), rtol=1e-9)
    np.testing.assert_allclose(w[:, 2] / w[:, 0], np.exp(-r), rtol=1e-9)
    scale_up = 1 + 0.1 * math.log(2.0) * x + 0.05 * math.log(2.0)  # the fake's (2, 2) weight
    np.testing.assert_allclose(w[:, 3] / w[:, 0], scale_up, rtol=1e-6)


def _weights_and_fake_members(lhe, nu):
    """The source's weights of a fake-MadGraph LHE file (reference sm), the events' x and the
    fake's PDF member factors 1..8 per event."""
    from eftflow.detector.sources import lhe_source

    src = lhe_source(lhe, ["sm"], nuisance=nu, reference="sm")
    w = np.asarray(next(src.iter_chunks(100))["weights"])
    ev = LHEReader(lhe).read()
    x = ev.pz[2::4] / ev.e[2::4]
    k = np.arange(1, 9)
    members = 1 + 0.02 * (-1.0) ** k * ((k + 1) // 2) * x[:, None]  # the fake's members 1..8
    return w, x, members


def test_madgraph_pdf_members_become_one_nuisance_each_as_in_madminer(tmp_path, monkeypatch):
    """pdf_members=N: MadMiner's ``<name>_nuisance_param_k`` (k = 1 … N), one-sided, weight
    w_ref · w_k / w₀; a file with another number of members is refused."""
    from eftflow.generate.madgraph import MadGraphGenerator

    sys.path.insert(0, str(Path(__file__).parent / "fake_mg5"))
    from harness import eft_setup, install_fake_mg5, mg_job

    mg = install_fake_mg5(tmp_path / "MG5_aMC_v3_5_7")
    setup = eft_setup(1)
    setup.add_systematics("pdf", "ct", pdf_variation="CT10", pdf_members=8)
    names = [f"ct_nuisance_param_{k}" for k in range(1, 9)]
    assert [n for n in setup.nuisance_parameters] == names
    assert all(setup.nuisance_parameters[n].benchmark_negative is None for n in names)
    monkeypatch.setenv("FAKE_MG5_LHAPDF", "1")
    monkeypatch.setenv("FAKE_MG5_WEIGHT_DIGITS", "15")
    monkeypatch.setenv("FAKE_MG5_PDF_COMBINE", "replicas")
    res = MadGraphGenerator().generate(mg_job(tmp_path, mg, setup, n_events=30))
    nu = lhe_nuisance_weights(setup, res.output)
    assert nu.names == [f"{n}_benchmark_0" for n in names] and not nu.pdf
    assert nu.members["ct_nuisance_param_3_benchmark_0"] == ("9", "12")  # PDF 10800, 10803
    w, x, members = _weights_and_fake_members(res.output, nu)
    np.testing.assert_allclose(w[:, 1:] / w[:, :1], members, rtol=1e-9)
    # the setup file keeps the parameters (MadMiner's layout)
    setup.save(tmp_path / "setup.h5")
    back = EFTSetup.from_file(tmp_path / "setup.h5")
    assert list(back.nuisance_parameters) == names
    assert lhe_nuisance_weights(back, res.output).members == nu.members
    for wrong in (7, 9):
        s2 = eft_setup(1)
        s2.add_systematics("pdf", "ct", pdf_variation="CT10", pdf_members=wrong)
        with pytest.raises(InputError, match=f"declares {wrong} members") as err:
            lhe_nuisance_weights(s2, res.output)
        assert err.value.field == "systematics.ct.pdf_members"
        assert err.value.file == str(res.output)


def test_pdf_members_from_the_config():
    from eftflow.config import load_config

    cfg = load_config(None)
    cfg["systematics"] = [
        {"name": "nn", "type": "pdf", "pdf_variation": "NNPDF31", "pdf_members": 3}
    ]
    s = EFTSetup.from_config(cfg)
    assert [n for n in s.nuisance_parameters] == [f"nn_nuisance_param_{k}" for k in (1, 2, 3)]
    cfg["systematics"][0]["pdf_members"] = None  # the default: one parameter for the set
    s = EFTSetup.from_config(cfg)
    assert s.nuisance_parameters["nn_nuisance_param_0"].benchmark_negative is not None


@pytest.mark.parametrize("bad", [0, -3, 2.5, "ten", True])
def test_bad_pdf_members_are_refused(bad):
    s = EFTSetup()
    s.add_parameter("eft", 1, "W", parameter_range=(-1e-3, 1e-3))
    with pytest.raises(ConfigError, match="pdf_members must be a positive integer") as err:
        s.add_systematics("pdf", "ct", pdf_variation="CT10", pdf_members=bad)
    assert err.value.field == "systematics.ct.pdf_members" and not s.nuisance_parameters


def test_builtin_generator_refuses_pdf_systematics_before_generating(tmp_path):
    from eftflow.generate.base import GenerationJob
    from eftflow.generate.builtin import BuiltinGenerator

    s = _dy_setup(("pdf", "ct", {"pdf_variation": "CT10"}))
    out = tmp_path / "x.lhe.gz"
    with pytest.raises(ConfigError, match="no error members") as err:
        BuiltinGenerator().generate(GenerationJob("mll_200_500", 0, 10, 3, out, s))
    assert err.value.field == "systematics.ct" and not out.exists()


def test_workflow_model_takes_every_nuisance_through_its_rate(tmp_path):
    from eftflow.inference.model.demo import rate_effects

    s = _dy_setup(MU, LUMI)
    path = tmp_path / "ev.zarr"
    _, _, up, down = _shape_store(path, s, 2500, 8, 700)
    eff = rate_effects(path, s)
    assert list(eff) == [NU, "lumi_nuisance_param_0"]
    assert eff[NU] == pytest.approx([up.mean(), down.mean()], rel=1e-12)
    assert eff["lumi_nuisance_param_0"] == pytest.approx([1.02, 1 / 1.02], rel=1e-12)
