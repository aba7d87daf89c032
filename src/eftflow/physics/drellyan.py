"""LO Drell–Yan q q̄ → γ*/Z → ℓ⁻ℓ⁺ with EFT contact terms: helicity amplitudes and weight ratios.

Pure numpy, vectorised over events and benchmarks. Used by the builtin generator
(:mod:`eftflow.generate.builtin`) to reweight Pythia 8's ``WeakSingleBoson:ffbar2gmZ`` events to
every benchmark, and usable on its own for numerical integrations (the tests integrate it with
Pythia's PDFs and compare with ``sigmaGen``).

Formula (massless fermions; θ = angle between the incoming *quark* and the ℓ⁻ in the ℓℓ rest
frame; i = lepton chirality, j = quark chirality, each L or R)::

    Σ_spins |M|² = ŝ² Σ_ij |A_ij(ŝ)|² (1 ± cos θ)²      (+ for LL, RR; − for LR, RL)
    A_ij(ŝ) = e² Q_q Q_ℓ / ŝ + g_Z² g^ℓ_i g^q_j / (ŝ − m_Z² + i ŝ Γ_Z/m_Z) + C_ij
    g_Z² = e² / (s_W² c_W²),   g^f_L = T³_f − Q_f s̄_W²,   g^f_R = −Q_f s̄_W²

and dσ̂/dcos θ = ŝ Σ_ij |A_ij|² (1 ± cos θ)² / (384 π) per lepton flavour (spin and colour
averaged), which is exactly Pythia's ``Sigma1ffbar2gmZ`` for massless leptons.

Electroweak conventions (Pythia's, so that the SM weight equals Pythia's and σ_SM per mℓℓ slice
equals its ``sigmaGen``): m_Z = ``23:m0``; Γ_Z the width Pythia recomputes at ``init()``
(≈ 2.504 GeV, not the PDG 2.4952); a running-width propagator; the Z couplings g^f with
``StandardModel:sin2thetaWbar`` (s̄_W² = 0.2315) and the normalisation g_Z² = e²/(s_W² c_W²) with
``StandardModel:sin2thetaW`` (s_W² = 0.2312); e² = 4π α_EM(ŝ) with Pythia's running α_EM (it
cancels in the ratio unless absolute contact coefficients are used). Read them from a Pythia
instance after ``init()`` with :meth:`EWParameters.from_pythia`.

Contact terms C_ij (both parametrisations are quadratic in the coefficients, so |M|² is a
polynomial of degree two and morphing is exact):

* Oblique parameters W and Y (Farina et al., arXiv:1609.08157)::

      C_ij = −(g² W T³_ℓi T³_qj + g′² Y Y_ℓi Y_qj) / m_W²,   g² = e²/s_W²,  g′² = e²/c_W²

  hypercharges ℓ_L −1/2, e_R −1, q_L 1/6, u_R 2/3, d_R −1/3; T³ = 0 for right-handed fields;
  m_W = ``24:m0``; s_W² = ``sin2thetaW``. The W operator turns the W³ propagator into
  1/(p²(1 + W p²/m_W²)) ≈ 1/ŝ − W/m_W², so W > 0 interferes destructively at high mass (the SM
  amplitudes are negative there); likewise Y for B. Since C ∝ e², the running α_EM(ŝ) enters the
  contact term too and cancels in |M_EFT|²/|M_SM|² (the simplest of the possible choices; using
  α(m_Z) or α from G_F instead would move the effect at mℓℓ ~ 2 TeV by ~2 %).
* General lepton–quark contact operators, Warsaw basis, the seven that interfere with the SM
  (Panico, Ricci, Wulzer, arXiv:2103.10532), L ⊃ Σ_k (c_k / Λ²) O_k with Λ = 1 TeV (coefficient
  values in TeV⁻²), lepton- and quark-flavour universal within up-type (u, c) and down-type
  (d, s, b) quarks. With the amplitude convention above (the s-channel exchange of a heavy vector
  gives −g²/M²), an operator c (ψ̄_ℓ γ ψ_ℓ)(ψ̄_q γ ψ_q) adds +c/Λ² to A_ij:

  =========  ===============================  ===========================================
  name       operator                         A_ij contribution (/Λ²)
  =========  ===============================  ===========================================
  ``clq1``   (l̄γl)(q̄γq)                       LL: +c (u and d)
  ``clq3``   (l̄γσᴵl)(q̄γσᴵq)                   LL: −c (u), +c (d)
  ``ceu``    (ēγe)(ūγu)                       RR (u)
  ``ced``    (ēγe)(d̄γd)                       RR (d)
  ``clu``    (l̄γl)(ūγu)                       ℓ_L u_R  (i = L, j = R)
  ``cld``    (l̄γl)(d̄γd)                       ℓ_L d_R
  ``cqe``    (q̄γq)(ēγe)                       ℓ_R q_L  (u and d)
  =========  ===============================  ===========================================

  In this language W ≡ c_lq3 = −g²W Λ²/(4 m_W²) and Y a combination of all seven.

Example
-------
>>> import numpy as np
>>> ew = EWParameters()
>>> shat = np.array([150.0**2, 2000.0**2]); cos = np.array([0.3, -0.5]); q = np.array([2, 1])
>>> r = weight_ratios(shat, cos, q, np.array([[0.0, 0.0], [1e-3, 0.0]]), ["W", "Y"], ew)
>>> r[:, 0].tolist()
[1.0, 1.0]
>>> bool(r[1, 1] < 0.9)   # W > 0: destructive at 2 TeV
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from eftflow.errors import ConfigError

__all__ = [
    "EWParameters",
    "OBLIQUE",
    "FOUR_FERMION",
    "COEFFICIENTS",
    "HELICITIES",
    "contact_matrix",
    "helicity_amplitudes",
    "angular_factors",
    "squared_me",
    "weight_ratios",
    "dsigma_dcos",
    "cos_theta_star",
]

#: oblique parameters (amplitude contribution ∝ e², dimensionless coefficients)
OBLIQUE = ("W", "Y")
#: the seven interfering lepton–quark operators (coefficients in TeV⁻², Λ = 1 TeV)
FOUR_FERMION = ("clq1", "clq3", "ceu", "ced", "clu", "cld", "cqe")
#: every coefficient name the builtin matrix element knows
COEFFICIENTS = OBLIQUE + FOUR_FERMION
#: (lepton chirality, quark chirality) in the order of the last axis of the amplitudes
HELICITIES = ("LL", "LR", "RL", "RR")

_LAMBDA2 = 1.0e6  # Λ² in GeV² (Λ = 1 TeV)
_Q_LEP, _T3_LEP = -1.0, -0.5
_Q = {"u": 2.0 / 3.0, "d": -1.0 / 3.0}
_T3 = {"u": 0.5, "d": -0.5}
_HYPER_LEP = {"L": -0.5, "R": -1.0}
_HYPER_Q = {"u": {"L": 1.0 / 6.0, "R": 2.0 / 3.0}, "d": {"L": 1.0 / 6.0, "R": -1.0 / 3.0}}
# four-fermion coefficient -> {quark type: {helicity: factor}}
_FOUR_FERMION_MAP = {
    "clq1": {"u": {"LL": 1.0}, "d": {"LL": 1.0}},
    "clq3": {"u": {"LL": -1.0}, "d": {"LL": 1.0}},
    "ceu": {"u": {"RR": 1.0}, "d": {}},
    "ced": {"u": {}, "d": {"RR": 1.0}},
    "clu": {"u": {"LR": 1.0}, "d": {}},
    "cld": {"u": {}, "d": {"LR": 1.0}},
    "cqe": {"u": {"RL": 1.0}, "d": {"RL": 1.0}},
}


@dataclass(frozen=True)
class EWParameters:
    """Electroweak inputs of the matrix element (defaults: Pythia 8.317 after ``init()``).

    Attributes
    ----------
    m_z, gamma_z, m_w
        Z mass, Z width (as Pythia recomputes it at ``init()``), W mass, GeV.
    sin2theta_w
        s_W² of the coupling normalisation g_Z² = e²/(s_W² c_W²) and of g, g′ (``sin2thetaW``).
    sin2theta_w_bar
        effective s̄_W² of the vector couplings (``sin2thetaWbar``).
    """

    m_z: float = 91.1876
    gamma_z: float = 2.5041895850769285
    m_w: float = 80.385
    sin2theta_w: float = 0.2312
    sin2theta_w_bar: float = 0.2315

    @classmethod
    def from_pythia(cls, pythia) -> EWParameters:
        """Read the inputs from an initialised ``pythia8mc.Pythia`` (call after ``init()``)."""
        pd = pythia.particleData
        return cls(
            m_z=float(pd.m0(23)),
            gamma_z=float(pd.mWidth(23)),
            m_w=float(pd.m0(24)),
            sin2theta_w=float(pythia.parm("StandardModel:sin2thetaW")),
            sin2theta_w_bar=float(pythia.parm("StandardModel:sin2thetaWbar")),
        )

    def as_dict(self) -> dict[str, float]:
        return {k: float(getattr(self, k)) for k in self.__dataclass_fields__}


def _quark_type(quark_id) -> np.ndarray:
    """Boolean array: True for up-type quarks (|id| = 2, 4), False for down-type (1, 3, 5)."""
    a = np.abs(np.asarray(quark_id))
    if a.size and not np.all((a >= 1) & (a <= 5)):
        bad = a[~((a >= 1) & (a <= 5))][0]
        raise ValueError(f"quark id must be 1..5 in absolute value, got {bad}")
    return (a % 2) == 0


def contact_matrix(
    parameter_names: Sequence[str], ew: EWParameters
) -> tuple[np.ndarray, np.ndarray]:
    """Contact-term coefficients per unit parameter.

    Returns
    -------
    (e2_part, abs_part)
        Arrays of shape (2, n_parameters, 4) (quark type d=0/u=1, parameter, helicity): the
        contribution to A_ij per unit parameter is ``e² · e2_part + abs_part`` (GeV⁻²).
    """
    e2_part = np.zeros((2, len(parameter_names), 4))
    abs_part = np.zeros((2, len(parameter_names), 4))
    s2 = ew.sin2theta_w
    c2 = 1.0 - s2
    mw2 = ew.m_w**2
    for k, name in enumerate(parameter_names):
        if name not in COEFFICIENTS:
            raise ConfigError(
                f"unknown EFT coefficient {name!r} for the builtin Drell-Yan matrix element; "
                f"expected one of {', '.join(COEFFICIENTS)}",
                field="parameters",
            )
        for t, qt in enumerate(("d", "u")):
            for h, hel in enumerate(HELICITIES):
                li, qj = hel[0], hel[1]
                if name == "W":
                    t3l = _T3_LEP if li == "L" else 0.0
                    t3q = _T3[qt] if qj == "L" else 0.0
                    e2_part[t, k, h] = -(1.0 / s2) * t3l * t3q / mw2
                elif name == "Y":
                    e2_part[t, k, h] = -(1.0 / c2) * _HYPER_LEP[li] * _HYPER_Q[qt][qj] / mw2
                else:
                    abs_part[t, k, h] = _FOUR_FERMION_MAP[name][qt].get(hel, 0.0) / _LAMBDA2
    return e2_part, abs_part


def _sm_amplitudes(shat, up, alpha_em, ew: EWParameters) -> np.ndarray:
    """SM A_ij for each event, shape (n, 4) complex."""
    shat = np.asarray(shat, dtype=float)
    e2 = 4.0 * np.pi * np.asarray(alpha_em, dtype=float)
    sb = ew.sin2theta_w_bar
    gz2 = e2 / (ew.sin2theta_w * (1.0 - ew.sin2theta_w))
    qq = np.where(up, _Q["u"], _Q["d"])
    t3q = np.where(up, _T3["u"], _T3["d"])
    gl = {"L": _T3_LEP - _Q_LEP * sb, "R": -_Q_LEP * sb}
    gq = {"L": t3q - qq * sb, "R": -qq * sb}
    prop = 1.0 / (shat - ew.m_z**2 + 1j * shat * ew.gamma_z / ew.m_z)
    photon = e2 * qq * _Q_LEP / shat
    out = np.empty(shat.shape + (4,), dtype=complex)
    for h, hel in enumerate(HELICITIES):
        out[..., h] = photon + gz2 * gl[hel[0]] * gq[hel[1]] * prop
    return out


def helicity_amplitudes(
    shat,
    quark_id,
    theta,
    parameter_names: Sequence[str],
    ew: EWParameters,
    alpha_em=1.0 / 128.0,
) -> np.ndarray:
    """A_ij for every event and parameter point.

    Parameters
    ----------
    shat
        ŝ per event, GeV², shape (n,).
    quark_id
        PDG id of the incoming quark (sign ignored), shape (n,).
    theta
        Coefficient values, shape (n_points, n_parameters) (or (n_parameters,)).
    parameter_names
        Names of the columns of ``theta``, each in :data:`COEFFICIENTS`.
    ew
        Electroweak inputs.
    alpha_em
        α_EM(ŝ) per event (scalar or shape (n,)).

    Returns
    -------
    numpy.ndarray
        Complex, shape (n, n_points, 4); last axis in the order of :data:`HELICITIES`.
    """
    shat = np.atleast_1d(np.asarray(shat, dtype=float))
    up = _quark_type(quark_id)
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    if theta.shape[1] != len(parameter_names):
        raise ValueError(f"theta has {theta.shape[1]} columns but {len(parameter_names)} names")
    alpha = np.broadcast_to(np.asarray(alpha_em, dtype=float), shat.shape)
    sm = _sm_amplitudes(shat, up, alpha, ew)  # (n, 4)
    e2_part, abs_part = contact_matrix(parameter_names, ew)
    ce2 = np.einsum("bk,tkh->tbh", theta, e2_part)  # (2, n_points, 4)
    cabs = np.einsum("bk,tkh->tbh", theta, abs_part)
    t = up.astype(int)
    e2 = 4.0 * np.pi * alpha
    contact = e2[:, None, None] * ce2[t] + cabs[t]  # (n, n_points, 4)
    return sm[:, None, :] + contact


def angular_factors(cos_theta) -> np.ndarray:
    """(1 ± cos θ)² per event in the order of :data:`HELICITIES`, shape (n, 4)."""
    c = np.atleast_1d(np.asarray(cos_theta, dtype=float))
    plus, minus = (1.0 + c) ** 2, (1.0 - c) ** 2
    return np.stack([plus, minus, minus, plus], axis=-1)


def squared_me(
    shat, cos_theta, quark_id, theta, parameter_names, ew: EWParameters, alpha_em=1.0 / 128.0
) -> np.ndarray:
    """Σ_ij |A_ij|² (1 ± cos θ)² (GeV⁻⁴), shape (n, n_points); multiply by ŝ² for Σ_spins |M|²."""
    amp = helicity_amplitudes(shat, quark_id, theta, parameter_names, ew, alpha_em)
    ang = angular_factors(cos_theta)
    return np.einsum("nbh,nh->nb", amp.real**2 + amp.imag**2, ang)


def weight_ratios(
    shat, cos_theta, quark_id, theta, parameter_names, ew: EWParameters, alpha_em=1.0 / 128.0
) -> np.ndarray:
    """|M(θ_b)|² / |M_SM|² per event and parameter point, shape (n, n_points).

    The SM is evaluated through the same code path with θ = 0, so the ratio is exactly 1 at the
    SM point. For W and Y alone the ratio does not depend on ``alpha_em``.
    """
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    full = squared_me(
        shat,
        cos_theta,
        quark_id,
        np.vstack([np.zeros((1, theta.shape[1])), theta]),
        parameter_names,
        ew,
        alpha_em,
    )
    return full[:, 1:] / full[:, :1]


def dsigma_dcos(
    shat, cos_theta, quark_id, theta, parameter_names, ew: EWParameters, alpha_em=1.0 / 128.0
) -> np.ndarray:
    """Partonic dσ̂/dcos θ (q q̄ → ℓ⁻ℓ⁺, one lepton flavour, spin/colour averaged), GeV⁻²."""
    shat = np.atleast_1d(np.asarray(shat, dtype=float))
    m2 = squared_me(shat, cos_theta, quark_id, theta, parameter_names, ew, alpha_em)
    return shat[:, None] * m2 / (384.0 * np.pi)


def _boost_to_rest(p: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """Three-momenta of ``p`` (n, 4: px, py, pz, e) in the rest frame of ``frame`` (n, 4)."""
    beta = frame[:, :3] / frame[:, 3:4]
    b2 = np.sum(beta**2, axis=1)
    gamma = 1.0 / np.sqrt(1.0 - b2)
    bp = np.sum(beta * p[:, :3], axis=1)
    safe_b2 = np.where(b2 > 0, b2, 1.0)
    coef = np.where(b2 > 0, (gamma - 1.0) * bp / safe_b2, 0.0) - gamma * p[:, 3]
    return p[:, :3] + coef[:, None] * beta


def cos_theta_star(p_quark, p_lminus, p_lplus) -> np.ndarray:
    """cos of the angle between the incoming quark and ℓ⁻ in the ℓ⁻ℓ⁺ rest frame.

    Momenta as arrays (n, 4) with columns (px, py, pz, e).
    """
    pq = np.asarray(p_quark, dtype=float)
    lm = np.asarray(p_lminus, dtype=float)
    frame = lm + np.asarray(p_lplus, dtype=float)
    q3 = _boost_to_rest(pq, frame)
    l3 = _boost_to_rest(lm, frame)
    num = np.sum(q3 * l3, axis=1)
    den = np.sqrt(np.sum(q3**2, axis=1) * np.sum(l3**2, axis=1))
    return np.clip(num / den, -1.0, 1.0)
