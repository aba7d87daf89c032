"""Four-vector arithmetic on flat numpy arrays (no per-event Python).

All functions take and return numpy arrays of the same shape, one entry per object. Coordinates
are (pt, eta, phi, m) or (px, py, pz, E); angles in radians, φ in (−π, π].

Example
-------
>>> import numpy as np
>>> px, py, pz, e = to_cartesian(np.array([40.0]), np.array([0.0]), np.array([0.0]), np.array([0.0]))
>>> float(px[0]), float(e[0])
(40.0, 40.0)
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "to_cartesian",
    "from_cartesian",
    "eta_from_cartesian",
    "mass_from_cartesian",
    "mass_from_energy",
    "energy_from_mass",
    "delta_phi",
    "delta_r",
    "transverse_mass",
    "cos_theta_collins_soper",
]


def to_cartesian(pt, eta, phi, m):
    """(pt, η, φ, m) → (px, py, pz, E)."""
    pt = np.asarray(pt, dtype=np.float64)
    px = pt * np.cos(phi)
    py = pt * np.sin(phi)
    pz = pt * np.sinh(eta)
    e = np.sqrt(px * px + py * py + pz * pz + np.asarray(m, dtype=np.float64) ** 2)
    return px, py, pz, e


def from_cartesian(px, py, pz, e):
    """(px, py, pz, E) → (pt, η, φ, m); η = 0 for pt = 0, m = 0 for (rounding-)spacelike vectors."""
    px, py, pz, e = (np.asarray(a, dtype=np.float64) for a in (px, py, pz, e))
    pt = np.hypot(px, py)
    return pt, eta_from_cartesian(pt, pz), np.arctan2(py, px), mass_from_cartesian(px, py, pz, e)


def eta_from_cartesian(pt, pz):
    """η from pT and p_z (0 where pT = 0)."""
    pt = np.asarray(pt, dtype=np.float64)
    pos = pt > 0
    out = np.zeros_like(pt)
    np.divide(pz, pt, out=out, where=pos)
    return np.arcsinh(out, out=out)


def mass_from_cartesian(px, py, pz, e):
    """m = √max(E² − |p|², 0) (0 for rounding-spacelike vectors)."""
    e = np.asarray(e, dtype=np.float64)
    m2 = e * e
    for p in (px, py, pz):
        p = np.asarray(p, dtype=np.float64)
        m2 -= p * p
    np.maximum(m2, 0.0, out=m2)
    return np.sqrt(m2, out=m2)


def energy_from_mass(pt, eta, m):
    """E from (pt, η, m)."""
    p = np.asarray(pt, dtype=np.float64) * np.cosh(eta)
    return np.sqrt(p * p + np.asarray(m, dtype=np.float64) ** 2)


def mass_from_energy(pt, eta, e):
    """m from (pt, η, E) (0 where E < |p| by rounding)."""
    p = np.asarray(pt, dtype=np.float64) * np.cosh(eta)
    return np.sqrt(np.maximum(np.asarray(e, dtype=np.float64) ** 2 - p * p, 0.0))


def delta_phi(phi1, phi2):
    """|Δφ| folded into [0, π]."""
    d = np.abs(np.asarray(phi1) - np.asarray(phi2)) % (2 * np.pi)
    return np.where(d > np.pi, 2 * np.pi - d, d)


def delta_r(eta1, phi1, eta2, phi2):
    """ΔR = √(Δη² + Δφ²)."""
    dphi = delta_phi(phi1, phi2)
    deta = np.asarray(eta1) - np.asarray(eta2)
    return np.sqrt(deta * deta + dphi * dphi)


def transverse_mass(pt1, phi1, pt2, phi2):
    """m_T = √(2 pT1 pT2 (1 − cos Δφ)) of two (massless) objects, e.g. a lepton and MET."""
    return np.sqrt(
        np.maximum(2.0 * pt1 * pt2 * (1.0 - np.cos(np.asarray(phi1) - np.asarray(phi2))), 0.0)
    )


def cos_theta_collins_soper(p1, p2):
    """cos θ* in the Collins–Soper frame of a pair; ``p1`` is the negatively charged lepton.

    ``p1``, ``p2`` are (px, py, pz, E) tuples. The sign follows the pair's longitudinal
    direction (the quark direction is unknown in pp collisions):
    cos θ* = sign(p_z) · 2 (p1⁺ p2⁻ − p1⁻ p2⁺) / (m √(m² + pT²)), p± = (E ± p_z)/√2,
    computed as sign(p_z) · 2 (p_z1 E2 − E1 p_z2) / √(m² (m² + pT²)).
    """
    px1, py1, pz1, e1 = p1
    px2, py2, pz2, e2 = p2
    px, py, pz, e = px1 + px2, py1 + py2, pz1 + pz2, e1 + e2
    pt2 = px * px
    pt2 += py * py
    m2 = e * e
    m2 -= pt2
    m2 -= pz * pz
    np.maximum(m2, 0.0, out=m2)
    num = pz1 * e2
    num -= e1 * pz2
    num *= 2.0
    pt2 += m2
    pt2 *= m2
    with np.errstate(divide="ignore", invalid="ignore"):
        num /= np.sqrt(pt2, out=pt2)
    np.negative(num, out=num, where=pz < 0)
    return num
