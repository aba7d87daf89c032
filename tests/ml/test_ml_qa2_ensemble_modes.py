"""Ensemble Fisher-information modes against exactly known member noise.

Members predict t_k(x) = t(x) + ε_k(x) with independent ε of known variance s² per event:
E[t̄ t̄ᵀ] = t tᵀ + s²/K and E[mean_k t_k t_kᵀ] = t tᵀ + s², so the ``information`` mode is
biased by L σ s², ``score`` by L σ s²/K, and ``modified_score`` (the mean score's information
less the member spread of the mean) is unbiased.
"""

from __future__ import annotations

import numpy as np
import pytest

from eftflow.ml import ensemble as ens_mod
from eftflow.ml.ensemble import Ensemble


def _fake_ensemble(monkeypatch, n_members, t_true, noise):
    preds = {k: t_true + noise[k] for k in range(n_members)}
    monkeypatch.setattr(ens_mod, "predict_score", lambda m, x: preds[m])
    ens = Ensemble.__new__(Ensemble)
    ens.members = list(range(n_members))
    ens.specs = [{"method": "sally", "family": "score"}] * n_members
    ens.source, ens.method = None, "sally"
    ens.weights = np.full(n_members, 1.0 / n_members)
    return ens


@pytest.mark.parametrize("n_members", [3, 5])
def test_modified_score_is_unbiased_for_known_member_noise(monkeypatch, n_members):
    rng = np.random.default_rng(1)
    n, s = 200_000, 0.7
    x = rng.normal(size=n)
    t_true = np.stack([2 * x, 2 * (x * x - 1)], axis=1)
    noise = s * rng.normal(size=(n_members, n, 2))
    ens = _fake_ensemble(monkeypatch, n_members, t_true, noise)
    w = np.full(n, 10.0 / n)  # σ = 10 pb
    lum = 3.0
    exact = lum * np.einsum("i,ij,ik->jk", w, t_true, t_true)
    bias = lum * 10.0 * s**2 * np.eye(2)
    info_i, _ = ens.fisher_information(None, w, lum, mode="information")
    info_s, _ = ens.fisher_information(None, w, lum, mode="score")
    info_m, _ = ens.fisher_information(None, w, lum, mode="modified_score")
    # the event sample is large: the noise averages to its expectation within ~1 %
    np.testing.assert_allclose(info_i, exact + bias, atol=0.6)
    np.testing.assert_allclose(info_s, exact + bias / n_members, atol=0.6)
    np.testing.assert_allclose(info_m, exact, atol=0.6)
    assert abs(info_m[0, 0] - exact[0, 0]) < 0.1 * bias[0, 0]
