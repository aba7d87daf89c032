"""Balanced training samples (eftflow.sampling.balance): draws ∝ w·c(x) and the exact correction."""

from __future__ import annotations

import re

import numpy as np
import pytest

from eftflow.errors import ConfigError, InputError
from eftflow.generate.toy import toy_cross_section, toy_dsigma, toy_log_density
from eftflow.sampling import SampleAugmenter, benchmark, random_morphing_points
from eftflow.sampling.balance import balance_from_config, log_z
from eftflow.sampling.output import read_training_set

TAIL = {"observable": "x", "edges": [2.0]}  # x > 2 holds 2.3 % of σ at the SM


@pytest.fixture(scope="module")
def balanced(big_store, toy, tmp_path_factory):
    out = tmp_path_factory.mktemp("bal") / "r.zarr"
    sa = SampleAugmenter(big_store, toy, dtype="float64")
    prior = random_morphing_points(20, [("flat", -0.8, 0.8), ("flat", -0.5, 0.5)])
    sa.sample_train_ratio(prior, benchmark("sm"), 60_000, out, seed=9, balance=TAIL)
    return read_training_set(out)


def test_balanced_draws_give_each_bin_its_share(balanced):
    rec = balanced["attrs"]["balance"]
    assert rec["observable"] == "x" and rec["edges"] == [2.0] and rec["reference"] == "sm"
    # the SM tail fraction of the toy is P(x > 2) under φ(x): 2.28 %
    assert rec["share_unbalanced"][1] == pytest.approx(0.0228, abs=0.001)
    assert rec["share_balanced"] == pytest.approx([0.5, 0.5])
    x, y = balanced["x"][:, 0], balanced["y"][:, 0]
    tail = x[y == 1] > 2.0  # drawn at θ1 = SM, the reference: half in each bin
    assert abs(tail.mean() - 0.5) < 4 * np.sqrt(0.25 / tail.size)
    assert rec["theta1"] == [0.0, 0.0]


def test_shares_and_factors(small_store, toy, tmp_path):
    """``shares`` sets each bin's share of the draws at the reference; ``factors`` set c directly."""
    sa = SampleAugmenter(small_store, toy, dtype="float64")
    args = (benchmark("t1_pos"), benchmark("sm"), 20_000)
    sa.sample_train_ratio(
        *args, tmp_path / "s.zarr", seed=3, balance={**TAIL, "shares": [0.9, 0.1]}
    )
    d = read_training_set(tmp_path / "s.zarr")
    assert d["attrs"]["balance"]["share_balanced"] == pytest.approx([0.9, 0.1])
    tail = d["x"][d["y"][:, 0] == 1, 0] > 2.0
    assert abs(tail.mean() - 0.1) < 4 * np.sqrt(0.09 / tail.size)
    from eftflow.inspect import inspect_path

    said = inspect_path(tmp_path / "s.zarr")["balance"]
    assert re.match(r"x bins at \[2\]: shares at sm 0\.97\d*, 0\.02\d* -> 0\.9, 0\.1 ", said), said
    sa.sample_train_ratio(*args, tmp_path / "f.zarr", seed=3, balance={**TAIL, "factors": [1, 1]})
    f = read_training_set(tmp_path / "f.zarr")["attrs"]["balance"]
    assert f["factors"] == [1.0, 1.0] and f["share_balanced"] == pytest.approx(
        f["share_unbalanced"]
    )


def test_balanced_r_xz_is_the_true_ratio_times_z(balanced):
    """r_xz = r(x|θ0, θ1)·Z(θ1)/Z(θ0) for every row, Z from the recorded bin cross sections."""
    x, t0, t1 = balanced["x"][:, 0], balanced["theta0"], balanced["theta1"]
    rec = balanced["attrs"]["balance"]
    exact = toy_log_density(x, t0) - toy_log_density(x, t1)
    correction = log_z(rec, t0) - log_z(rec, t1)
    assert np.ptp(correction) > 1.0  # a large effect, not a rounding error
    # up to the Monte Carlo error of σ(θ) in the normalisation of the joint ratio
    np.testing.assert_allclose(np.log(balanced["r_xz"][:, 0]), exact - correction, atol=0.01)


def test_z_is_the_balanced_cross_section_over_the_true_one(balanced):
    """Z(θ) = Σ_b c_b σ_b(θ)/σ(θ): at the reference 1 by construction; elsewhere the toy's tail."""
    from scipy import integrate

    rec = balanced["attrs"]["balance"]
    c = np.asarray(rec["factors"])
    for theta in ([0.0, 0.0], [0.5, -0.3]):
        theta = np.asarray(theta)
        p = lambda v, th=theta: toy_dsigma(v, th) / toy_cross_section(th)  # noqa: E731
        tail = integrate.quad(p, 2.0, 15.0)[0]
        z = c[0] * (1 - tail) + c[1] * tail
        assert np.exp(log_z(rec, theta[None]))[0] == pytest.approx(z, rel=0.02)


def test_proposal_correction_matches_numpy(balanced):
    import torch

    from eftflow.ml.models import ProposalCorrection

    rec = balanced["attrs"]["balance"]
    corr = ProposalCorrection(
        rec["components"], rec["sigma_components"], rec["factors"], rec["theta1"]
    )
    theta = np.random.default_rng(1).uniform(-0.8, 0.8, size=(50, 2))
    got = corr(torch.tensor(theta)).numpy()
    np.testing.assert_allclose(got, log_z(rec, theta) - log_z(rec, np.zeros((1, 2))), atol=1e-12)
    assert corr(torch.zeros(3, 2)).abs().max() == 0.0  # r(x|θ1, θ1) = 1 is kept


def test_trained_estimator_is_corrected_and_learns_the_tail(balanced, big_store, toy, tmp_path):
    """An ALICES estimator on the balanced set returns the true log r (the correction is in its
    saved spec); the tail is learned better than from an unbalanced set of the same size."""
    from eftflow.ml.artifacts import load_model
    from eftflow.ml.evaluate import predict_log_r
    from eftflow.ml.train import TrainingConfig, train_estimator

    cfg = TrainingConfig(method="alices", hidden=(32, 32), n_epochs=8, batch_size=128,
                         learning_rate=5e-3, final_learning_rate=5e-4, validation_split=0.2)  # fmt: skip
    sa = SampleAugmenter(big_store, toy, dtype="float32")
    prior = random_morphing_points(50, [("flat", -0.5, 0.5), ("flat", -0.5, 0.5)])
    axis = np.linspace(-0.5, 0.5, 5)
    grid = np.array([[a, b] for a in axis for b in axis])
    tail_x = np.linspace(2.0, 3.5, 100)
    with np.errstate(divide="ignore"):  # dσ = 0 at x = 2 for θ = (−0.5, 0)
        true = np.array(
            [toy_log_density(tail_x, g) - toy_log_density(tail_x, [0, 0]) for g in grid]
        )
    ok = np.isfinite(true)
    errors = {}
    for name, bal in (("plain", None), ("balanced", TAIL)):
        path = tmp_path / f"{name}.zarr"
        sa.sample_train_ratio(prior, benchmark("sm"), 40_000, path, seed=9, balance=bal)
        train_estimator(path, cfg, tmp_path / name)
        model, spec = load_model(tmp_path / name)
        assert ("proposal" in spec["model"]["kwargs"]) == (bal is not None)
        est = predict_log_r(model, np.stack([tail_x, tail_x**2], axis=1), grid)
        errors[name] = np.mean(np.abs(est - true)[ok])
        if bal is not None:  # without the correction the ratio is off by log Z(θ1)/Z(θ0)
            model.proposal = None
            raw = predict_log_r(model, np.stack([tail_x, tail_x**2], axis=1), grid)
            assert np.mean(np.abs(raw - true)[ok]) > 2 * errors[name]
    # measured: 0.47 from the plain set, 0.25 from the balanced one
    assert errors["balanced"] < 0.32
    assert errors["balanced"] < 0.7 * errors["plain"], errors


def test_bad_balance_settings(small_store, toy, tmp_path):
    sa = SampleAugmenter(small_store, toy)
    args = (benchmark("t1_pos"), benchmark("sm"), 1000, tmp_path / "b.zarr")
    with pytest.raises(InputError, match="unknown observable 'mll'.*x, x2") as err:
        sa.sample_train_ratio(*args, balance={"observable": "mll", "edges": [1.0]})
    assert err.value.field == "balance.observable"
    for bad, what in [
        ({"observable": "x", "edges": []}, "edges"),
        ({"observable": "x", "edges": [2.0, 1.0]}, "increasing"),
        ({"observable": "x", "edges": [1.0], "factors": [1.0]}, "2 bins, got 1"),
        ({"observable": "x", "edges": [1.0], "factors": [1.0, -2.0]}, "positive"),
        ({"observable": "x", "edges": [1.0], "bins": 3}, "unknown key"),
        ({"observable": "x", "edges": [1.0], "shares": [0.5, 0.6]}, "add up to 1"),
        ({"observable": "x", "edges": [1.0], "shares": [0.5, 0.5], "factors": [1, 2]}, "not both"),
        ({"observable": "x", "edges": [1.0], "reference": "nope"}, "unknown benchmark 'nope'"),
    ]:
        with pytest.raises(ConfigError, match=what):
            sa.sample_train_ratio(*args, balance=bad)
    assert not (tmp_path / "b.zarr").exists()
    assert balance_from_config(None) is None


def test_balance_not_for_plain_sets_in_the_stage(small_store, toy, tmp_path):
    from eftflow.sampling.config import run_augmentation, stage_sections

    cfg = stage_sections(
        {"augmentation": {"samples": [
            {"name": "l", "method": "plain", "n_samples": 100, "balance": TAIL}]}}
    )  # fmt: skip
    with pytest.raises(
        ConfigError, match="for the methods local, density, ratio, more_ratios"
    ) as err:
        run_augmentation(small_store, toy, cfg, tmp_path / "out")
    assert err.value.field == "augmentation.samples[0].balance"
    assert not (tmp_path / "out").exists()


def test_an_unset_balance_is_no_balance(tmp_path):
    """The config's default, {observable: null, ...}, draws as without balance (nuisance scores
    allowed)."""
    from .conftest import nuisance_setup, write_toy_store

    setup = nuisance_setup("norm")
    store = write_toy_store(tmp_path / "n.zarr", setup, 5000, 3, chunk=2000, nuisance="norm")
    unset = {"observable": None, "edges": None, "shares": None, "factors": None, "reference": None}
    SampleAugmenter(store, setup).sample_train_local(
        benchmark("sm"), 500, tmp_path / "l.zarr", nuisance_score=True, balance=unset
    )
    d = read_training_set(tmp_path / "l.zarr")
    assert "balance" not in d["attrs"] and d["t_xz"].shape[1] == 3


def test_balance_refuses_non_nominal_nuisances(tmp_path):
    from .conftest import nuisance_setup, write_toy_store

    setup = nuisance_setup("norm")
    store = write_toy_store(tmp_path / "n.zarr", setup, 5000, 3, chunk=2000, nuisance="norm")
    sa = SampleAugmenter(store, setup)
    with pytest.raises(ConfigError, match="nominal nuisance"):
        sa.sample_train_ratio(
            benchmark("t1_pos"), benchmark("sm"), 1000, tmp_path / "b.zarr",
            nu0={"type": "point", "values": [1.0]}, balance=TAIL,
        )  # fmt: skip
    assert not (tmp_path / "b.zarr").exists()


def test_single_parameterised_estimator_needs_one_theta1(big_store, toy, tmp_path):
    from eftflow.ml.train import TrainingConfig, train_estimator

    sa = SampleAugmenter(big_store, toy)
    prior = random_morphing_points(4, [("flat", -0.5, 0.5), ("flat", -0.5, 0.5)])
    sa.sample_train_ratio(prior, prior, 2000, tmp_path / "b.zarr", seed=2, balance=TAIL)
    assert read_training_set(tmp_path / "b.zarr")["attrs"]["balance"]["theta1"] is None
    cfg = TrainingConfig(method="carl", hidden=(8,), n_epochs=1)
    with pytest.raises(InputError, match="doubly parameterised"):
        train_estimator(tmp_path / "b.zarr", cfg, None)


def test_grad_log_z_is_the_gradient_of_log_z(balanced):
    from eftflow.sampling.balance import grad_log_z

    rec = balanced["attrs"]["balance"]
    theta = np.array([[0.3, -0.2], [0.0, 0.0], [-0.6, 0.4]])
    h = 1e-6
    numeric = np.stack(
        [(log_z(rec, theta + h * e) - log_z(rec, theta - h * e)) / (2 * h) for e in np.eye(2)], 1
    )
    np.testing.assert_allclose(grad_log_z(rec, theta), numeric, atol=1e-6)


def test_balanced_local_set_and_its_corrected_score_estimator(big_store, toy, tmp_path):
    """A local set balanced at θ = (0.3, 0): t_xz = t − ∇ log Z(θ) row by row; the SALLY
    estimator trained on it adds ∇ log Z(θ) back and learns the tail better than from a plain set."""
    from eftflow.generate.toy import toy_score
    from eftflow.ml.artifacts import load_model
    from eftflow.ml.train import TrainingConfig, train_estimator
    from eftflow.sampling import morphing_point
    from eftflow.sampling.balance import grad_log_z

    sa = SampleAugmenter(big_store, toy, dtype="float64")
    theta = [0.3, 0.0]
    cfg = TrainingConfig(method="sally", hidden=(32, 32), n_epochs=8, batch_size=128,
                         learning_rate=5e-3, final_learning_rate=5e-4, validation_split=0.2)  # fmt: skip
    tail_x = np.linspace(2.0, 3.5, 100)
    truth = toy_score(tail_x, np.array(theta))
    errors = {}
    for name, bal in (("plain", None), ("balanced", TAIL)):
        path = tmp_path / f"{name}.zarr"
        sa.sample_train_local(morphing_point(theta), 30_000, path, seed=4, balance=bal)
        d = read_training_set(path)
        offset = np.zeros(2)
        if bal is not None:
            rec = d["attrs"]["balance"]
            assert rec["theta"] == theta
            offset = grad_log_z(rec, [theta])[0]
            assert np.abs(offset).max() > 0.5  # a large shift, not a rounding error
            # up to the Monte Carlo error of ∇σ/σ, as for the plain set
            np.testing.assert_allclose(
                d["t_xz"], toy_score(d["x"][:, 0], np.array(theta)) - offset, atol=2e-2
            )
        train_estimator(path, cfg, tmp_path / name)
        model, spec = load_model(tmp_path / name)
        assert ("offset" in spec["model"]["kwargs"]) == (bal is not None)
        import torch

        with torch.no_grad():
            est = model(torch.tensor(np.stack([tail_x, tail_x**2], 1), dtype=torch.float32))
        errors[name] = float(np.mean(np.abs(est.numpy() - truth)))
    assert errors["balanced"] < 0.7 * errors["plain"], errors


def test_balanced_bins_record_their_events_and_warn_on_repeats(small_store, toy, tmp_path, caplog):
    """Each bin's effective events at the reference and the expected draws per event; a share
    that draws a sparse bin's events more than 50 times each is a warning."""
    import logging

    sa = SampleAugmenter(small_store, toy, dtype="float64")
    args = (benchmark("t1_pos"), benchmark("sm"))
    with caplog.at_level(logging.INFO, logger="eftflow.sampling.balance"):
        sa.sample_train_ratio(*args, 2000, tmp_path / "a.zarr", seed=3, balance=TAIL)
    rec = read_training_set(tmp_path / "a.zarr")["attrs"]["balance"]
    # equal SM weights: the effective events are the events (12,000 in train, 2.4 % above 2)
    n_tail = rec["events_bins"][1]
    assert sum(rec["events_bins"]) == pytest.approx(12_000) and 200 < n_tail < 400
    assert rec["expected_repeats"][1] == pytest.approx(1000 / n_tail)
    assert "draws per effective event" in caplog.text and "lower its share" not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="eftflow.sampling.balance"):
        sa.sample_train_ratio(*args, 60_000, tmp_path / "b.zarr", seed=3, balance=TAIL)
    assert "lower its share" in caplog.text
    # a bin whose share balancing lowered may repeat its events (unbalanced draws would more):
    # no warning for it, as for the default workflow's bulk (few effective events, 99 % share)
    from eftflow.sampling.balance import expected_repeats

    caplog.clear()
    rec = {"events_bins": [100.0, 10_000.0], "share_unbalanced": [0.9, 0.1],
           "share_balanced": [0.8, 0.2]}  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="eftflow.sampling.balance"):
        assert expected_repeats(rec, 100_000) == pytest.approx([800.0, 2.0])
    assert caplog.text == ""
    rec["events_bins"] = [100.0, 100.0]
    with caplog.at_level(logging.WARNING, logger="eftflow.sampling.balance"):
        expected_repeats(rec, 100_000)
    assert "drawn 200 times" in caplog.text  # the raised bin's figure, not the lowered one's


def test_doubly_parameterised_estimator_on_a_balanced_set_stays_antisymmetric(
    big_store, toy, tmp_path
):
    """θ1 varies in the set: the correction log Z(θ0) − log Z(θ1) uses both inputs, and the
    estimator keeps log r̂(x|a, b) = −log r̂(x|b, a) and r̂(x|θ, θ) = 1 exactly."""
    import torch

    from eftflow.ml.artifacts import load_model
    from eftflow.ml.train import TrainingConfig, train_estimator

    sa = SampleAugmenter(big_store, toy)
    prior = random_morphing_points(4, [("flat", -0.5, 0.5), ("flat", -0.5, 0.5)])
    sa.sample_train_ratio(prior, prior, 4000, tmp_path / "d.zarr", seed=2, balance=TAIL)
    cfg = TrainingConfig(method="alice", hidden=(8,), n_epochs=1, doubly=True)
    train_estimator(tmp_path / "d.zarr", cfg, tmp_path / "m")
    model, spec = load_model(tmp_path / "m")
    assert spec["model"]["kwargs"]["proposal"]["theta1"] is None
    x = torch.tensor([[2.5, 6.25], [0.1, 0.01]])
    a, b = torch.tensor([[0.4, -0.2]] * 2), torch.tensor([[-0.3, 0.1]] * 2)
    with torch.no_grad():
        ab, ba, aa = model(x, a, b), model(x, b, a), model(x, a, a)
        corr = model.proposal(a, b)
    assert torch.allclose(ab, -ba, atol=1e-6) and torch.all(aa == 0)
    assert corr.abs().min() > 0.1  # the correction is in there, and it is antisymmetric too


def test_density_correction_turns_the_balanced_density_into_the_true_one(balanced):
    """A perfect estimator of the balanced density, log q = log c(x) + log p − log Z(θ), plus
    the correction gives log p exactly."""
    import torch

    from eftflow.ml.models import DensityCorrection

    rec = balanced["attrs"]["balance"]
    corr = DensityCorrection(rec["components"], rec["sigma_components"], rec["factors"],
                             rec["edges"], rec["observable_index"])  # fmt: skip
    rng = np.random.default_rng(3)
    x = rng.normal(size=300) * 1.5
    theta = rng.uniform(-0.5, 0.5, size=(300, 2))
    c = np.asarray(rec["factors"])[(x >= 2.0).astype(int)]
    log_q = np.log(c) + toy_log_density(x, theta) - log_z(rec, theta)
    got = torch.tensor(log_q) + corr(torch.tensor(np.c_[x, x * x]), torch.tensor(theta))
    np.testing.assert_allclose(got.numpy(), toy_log_density(x, theta), atol=1e-10)


def test_density_set_balanced_and_its_estimator_corrected(big_store, toy, tmp_path):
    import torch

    from eftflow.ml.artifacts import load_model
    from eftflow.ml.train import TrainingConfig, train_estimator

    sa = SampleAugmenter(big_store, toy)
    prior = random_morphing_points(5, [("flat", -0.5, 0.5), ("flat", -0.5, 0.5)])
    sa.sample_train_density(prior, 3000, tmp_path / "d.zarr", seed=2, balance=TAIL)
    d = read_training_set(tmp_path / "d.zarr")
    assert d["attrs"]["balance"]["observable_index"] == 0
    cfg = TrainingConfig(method="nde", hidden=(8,), n_epochs=1, flow_transforms=1)
    train_estimator(tmp_path / "d.zarr", cfg, tmp_path / "m")
    model, spec = load_model(tmp_path / "m")
    assert spec["model"]["kwargs"]["proposal"]["index"] == 0
    x = torch.tensor([[2.5, 6.25], [0.1, 0.01]])
    th = torch.tensor([[0.2, 0.1]] * 2)
    with torch.no_grad():
        full = model(x, th)
        corr = model.proposal(x, th)
        model.proposal = None
        raw = model(x, th)
    assert torch.allclose(full, raw + corr) and corr[0] < corr[1]  # the tail's c is the larger
