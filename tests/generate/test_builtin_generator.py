"""The builtin generator: Pythia 8 hard process + EFT weights → LHE; closure against integrations."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest

from eftflow.errors import ConfigError
from eftflow.generate.base import GenerationJob, Generator
from eftflow.generate.builtin import BuiltinGenerator, pythia_settings, samples_from_options
from eftflow.generate.seeds import job_seed
from eftflow.physics.drellyan import EWParameters, dsigma_dcos
from eftflow.setup import EFTSetup

pythia8mc = pytest.importorskip("pythia8mc")


@pytest.fixture(scope="module")
def wy_setup():
    s = EFTSetup()
    s.add_parameter("eft", 1, "W", parameter_range=(-1e-3, 1e-3))
    s.add_parameter("eft", 2, "Y", parameter_range=(-1e-3, 1e-3))
    s.add_benchmark({"W": 0.0, "Y": 0.0}, "sm", verbose=False)
    s.add_benchmark({"W": 1e-3, "Y": 0.0}, "w_pos", verbose=False)
    s.add_benchmark({"W": 0.0, "Y": 1e-3}, "y_pos", verbose=False)
    s.set_morphing(max_overall_power=2, seed=1)
    s.add_benchmark({"W": 0.37e-3, "Y": -0.81e-3}, "extra", verbose=False)  # not in the basis
    return s


def read_weights(path: Path) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """(weight ids, weights (n, n_b), XWGTUP (n,), event texts) of a small LHE file."""
    text = gzip.open(path, "rt").read()
    ids = re.findall(r"<weight id='([^']+)'", text)
    events = re.findall(r"<event>(.*?)</event>", text, re.S)
    w = np.array(
        [[float(v) for v in re.findall(r"<wgt id='[^']+'>\s*(\S+)\s*</wgt>", e)] for e in events]
    )
    xw = np.array([float(e.strip().split("\n")[0].split()[2]) for e in events])
    return ids, w, xw, events


def run(setup, tmp_path, sample, n, seed, **options):
    out = tmp_path / f"{sample}-{seed}.lhe.gz"
    job = GenerationJob(sample, 0, n, seed, out, setup, options=options)
    return BuiltinGenerator().generate(job), out


def test_is_a_generator_constructible_without_arguments():
    assert isinstance(BuiltinGenerator(), Generator) and BuiltinGenerator().name == "builtin"


def test_lhe_weights_sm_exact_and_morphing_closes(wy_setup, tmp_path):
    res, out = run(wy_setup, tmp_path, "mll_1000_3000", 400, 11)
    ids, w, xw, _ = read_weights(out)
    names = [b.name for b in wy_setup.physics_benchmarks()]
    assert ids == names and w.shape == (400, len(names))
    sigma = res.cross_sections["sm"]
    # SM weights: exactly σ/N for every event (ratio 1), Σ = σ
    assert np.all(w[:, 0] == w[0, 0])
    assert w[0, 0] == pytest.approx(sigma / 400, rel=1e-13)
    np.testing.assert_allclose(xw, sigma / 400, rtol=1e-9)
    # morphing from the 6 basis benchmarks reproduces the non-basis benchmark per event
    basis = wy_setup.benchmark_array()[:6]
    from eftflow.physics.morphing import Morpher, find_components

    mw = Morpher(find_components([2, 2], 2), basis).weights(np.array([[0.37e-3, -0.81e-3]]))[0]
    np.testing.assert_allclose(w[:, :6] @ mw, w[:, names.index("extra")], rtol=1e-10)
    # at 1–3 TeV, W = 1e-3 reduces σ by tens of percent
    assert 0.6 < res.cross_sections["w_pos"] / sigma < 0.85


def test_same_seed_same_events_different_seed_different(wy_setup, tmp_path):
    _, a = run(wy_setup, tmp_path / "a", "mll_120_200", 50, 5)
    _, b = run(wy_setup, tmp_path / "b", "mll_120_200", 50, 5)
    _, c = run(wy_setup, tmp_path / "c", "mll_120_200", 50, 6)
    ea, eb, ec = (read_weights(p)[3] for p in (a, b, c))
    assert ea == eb and ea != ec
    seeds = {job_seed(1, s, j) for s in ("mll_120_200", "mll_200_500") for j in range(50)}
    assert len(seeds) == 100


def _pythia_sigma(mll, n, seed):
    p = pythia8mc.Pythia("", False)
    for s in pythia_settings(mll, seed):
        p.readString(s)
    p.init()
    for _ in range(n):
        p.next()
    info = p.infoPython()
    return p, info.sigmaGen() * 1e9, info.sigmaErr() * 1e9


def _integrate(p, mll, thetas, n_m=64, n_y=48):
    """σ(θ) in pb with Pythia's PDFs: Gauss–Legendre over mℓℓ (Breit–Wigner mapped), rapidity
    and cos θ of the partonic formula."""
    ew = EWParameters.from_pythia(p)
    pdf, coup = p.getPDFPtr(2212), p.coupSM
    s = 13000.0**2
    lo, hi = mll
    # ρ = arctan((m² − m_Z²)/(m_Z Γ_Z)) flattens the Z peak
    mz, gz = ew.m_z, ew.gamma_z

    def rho(m):
        return np.arctan((m**2 - mz**2) / (mz * gz))

    xr, wr = np.polynomial.legendre.leggauss(n_m)
    r = 0.5 * (rho(hi) - rho(lo)) * xr + 0.5 * (rho(hi) + rho(lo))
    m2 = mz**2 + mz * gz * np.tan(r)
    jac = 0.5 * (rho(hi) - rho(lo)) * wr * (mz * gz / np.cos(r) ** 2)  # dm²
    xy, wy = np.polynomial.legendre.leggauss(n_y)
    xc, wc = np.polynomial.legendre.leggauss(3)
    thetas = np.atleast_2d(np.asarray(thetas, float))
    total = np.zeros(len(thetas))
    for sh, dm2 in zip(m2, jac):
        tau = sh / s
        ymax = -0.5 * np.log(tau)
        alpha = coup.alphaEM(sh)
        for q in (1, 2, 3, 4, 5):
            lum = 0.0
            for y, w in zip(ymax * xy, ymax * wy):
                x1, x2 = np.sqrt(tau) * np.exp(y), np.sqrt(tau) * np.exp(-y)
                lum += w * (
                    pdf.xf(q, x1, sh) * pdf.xf(-q, x2, sh) + pdf.xf(-q, x1, sh) * pdf.xf(q, x2, sh)
                )
            # dσ̂/dcos is a quadratic polynomial in cos θ: 3-point Gauss–Legendre is exact
            # (tests/generate/test_builtin_physics.py checks the cos integral with scipy quad)
            sig = wc @ dsigma_dcos(np.full(3, sh), xc, np.full(3, q), thetas, ["W", "Y"], ew, alpha)
            # dτ/τ = dŝ/ŝ; two lepton flavours; GeV⁻² → pb
            total += 2 * dm2 / sh * lum * sig * 0.3893794e9
    return total


@pytest.mark.parametrize("mll", [(60.0, 120.0), (500.0, 1000.0)])
def test_sm_cross_section_equals_pythia_sigma_gen(mll):
    """Independent integration of the SM formula with Pythia's PDFs = sigmaGen (its scatter)."""
    p, sigma, err = _pythia_sigma(mll, 40_000, 3)
    ref = _integrate(p, mll, [[0.0, 0.0]])[0]
    # quoted sigmaErr is 1.2–1.5× too small: allow 3 × 1.5 × err
    assert abs(sigma - ref) < 4.5 * err, (sigma, ref, err)


def test_eft_effect_grows_with_mass_as_integration_predicts(wy_setup, tmp_path):
    ratios = {}
    for mll in [(120.0, 200.0), (1000.0, 3000.0)]:
        res, out = run(wy_setup, tmp_path, "x", 3000, 21, mll=list(mll))
        _, w, _, _ = read_weights(out)
        names = list(res.cross_sections)
        r_ev = w / w[:, :1]
        mc = r_ev.mean(axis=0)
        mc_err = r_ev.std(axis=0) / np.sqrt(len(r_ev))
        p = pythia8mc.Pythia("", False)
        for s in pythia_settings(mll, 1):
            p.readString(s)
        p.init()
        thetas = wy_setup.benchmark_array()
        ana = _integrate(p, mll, thetas, n_m=32, n_y=32)
        pred = ana / ana[0]
        for k, name in enumerate(names):
            assert abs(mc[k] - pred[k]) < 4 * mc_err[k] + 1e-4, (
                mll,
                name,
                mc[k],
                pred[k],
                mc_err[k],
            )
        ratios[mll] = pred[names.index("w_pos")]
    low, high = (abs(1 - v) for v in ratios.values())
    assert 0.0005 < low < 0.01 and high > 0.15 and high > 20 * low


def test_samples_and_bad_options(wy_setup, tmp_path):
    assert samples_from_options({"slices": {"a": [60, 120]}}) == {"a": (60.0, 120.0)}
    bad = [
        ({"slices": [[200, 100]]}, "generation.builtin.slices"),
        ({"leptons": ["tau"]}, "generation.builtin.leptons"),
        ({"colour": 1}, "generation.builtin.colour"),
        ({"pythia_settings": ["NoSuch:thing = 3"]}, "generation.builtin.pythia_settings"),
    ]
    for options, field in bad:
        out = tmp_path / "bad.lhe.gz"
        job = GenerationJob("mll_120_200", 0, 10, 1, out, wy_setup, options=options)
        with pytest.raises(ConfigError) as err:
            BuiltinGenerator().generate(job)
        assert err.value.field.startswith(field)
        assert not out.exists() and not list(tmp_path.iterdir())
    job = GenerationJob("nope", 0, 10, 1, tmp_path / "x.lhe.gz", wy_setup)
    with pytest.raises(ConfigError, match="not one of the builtin generator's mll slices") as err:
        BuiltinGenerator().generate(job)
    assert err.value.field == "generation.samples"
    job = GenerationJob(
        "mll_120_200", 0, 10, 1, tmp_path / "x.lhe.gz", wy_setup, sampling_benchmark="w_pos"
    )
    with pytest.raises(ConfigError, match="samples at the SM"):
        BuiltinGenerator().generate(job)
    s = EFTSetup()
    s.add_parameter("dim6", 1, "CWL2", parameter_range=(-1, 1))
    s.add_benchmark({"CWL2": 0.0}, "sm", verbose=False)
    with pytest.raises(ConfigError, match="parameter_map") as err:
        BuiltinGenerator().generate(
            GenerationJob("mll_120_200", 0, 10, 1, tmp_path / "y.lhe.gz", s)
        )
    assert err.value.field == "generation.builtin.parameter_map.CWL2"
    assert not list(tmp_path.iterdir())
