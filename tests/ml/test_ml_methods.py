"""One invariant test over every estimator: it learns (beats its untrained self) and has the right shape."""

from __future__ import annotations

import numpy as np
import pytest

from eftflow.ml import METHODS

TOY_COMPONENTS = [[0, 0], [1, 0], [0, 1], [2, 0], [1, 1], [0, 2]]
CLIP = 3.0  # log r is compared clipped to ±3: its tails where f(x|θ) → 0 are singular
SMALL = {"hidden": (32, 32), "n_epochs": 5, "batch_size": 128, "learning_rate": 5e-3,
         "final_learning_rate": 1e-3, "validation_split": 0.2}  # fmt: skip

CASES = [(m, "ratio", {}) for m in ("carl", "rolr", "rascal", "alice", "alices", "cascal")]
CASES += [("sally", "local", {}), ("sallino", "local", {})]
CASES += [("nde", "density", {"hidden": (32, 32), "flow_transforms": 1, "n_epochs": 3}),
          ("scandal", "density", {"hidden": (32, 32), "flow_transforms": 1, "n_epochs": 3})]  # fmt: skip
CASES += [("alices", "doubly", {"doubly": True}), ("carl", "doubly", {"doubly": True})]
CASES += [("alices", "ratio", {"morphing_aware": True, "components": TOY_COMPONENTS}),
          ("rascal", "ratio", {"morphing_aware": True, "components": TOY_COMPONENTS})]  # fmt: skip


def _ids(case):
    m, _, opts = case
    return (
        m
        + ("-doubly" if opts.get("doubly") else "")
        + ("-morphing" if opts.get("morphing_aware") else "")
    )


def test_every_method_is_covered():
    assert {c[0] for c in CASES} == set(METHODS)


def _untrained(spec, trained, seed):
    import torch

    from eftflow.ml.artifacts import build_model

    torch.manual_seed(seed)
    model = build_model(spec)
    state = {k: v for k, v in trained.state_dict().items() if "scale" in k or "components" in k}
    model.load_state_dict(state, strict=False)
    return model.eval()


def _error(family, model, test):
    import torch

    from eftflow.ml.evaluate import predict_score

    if family == "score":
        t = predict_score(model, test["x"])
        assert t.shape == (len(test["x"]), 2)
        return float(np.mean((t - test["t"]) ** 2)), t
    x = torch.as_tensor(test["x"][:, None], dtype=torch.float32)
    t0 = torch.as_tensor(test["theta0"], dtype=torch.float32)
    with torch.no_grad():
        if family == "density":
            lp = model(x, t0).numpy()
            assert lp.shape == (len(x),)
            return float(-np.mean(lp)), lp
        t1 = torch.as_tensor(test["theta1"], dtype=torch.float32)
        lr = model(x, t0, t1).numpy()
    assert lr.shape == (len(x),)
    d = np.clip(lr, -CLIP, CLIP) - np.clip(test["log_r"], -CLIP, CLIP)
    return float(np.mean(d**2)), lr


def _test_data(kind, rng, toy, n=3000):
    log_p, sample, score = toy["log_p"], toy["sample"], toy["score"]
    if kind == "local":
        x = rng.normal(size=n)
        return {"x": x, "t": score(x, np.zeros(2))}
    theta0 = rng.uniform(-0.6, 0.6, size=(n, 2))
    theta1 = rng.uniform(-0.6, 0.6, size=(n, 2)) if kind == "doubly" else np.zeros((n, 2))
    src = theta0 if kind == "density" else theta1
    x = sample(src, rng)
    return {"x": x, "theta0": theta0, "theta1": theta1,
            "log_r": log_p(x, theta0) - log_p(x, theta1), "log_p": log_p(x, theta0)}  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_method_learns(case, toy_sets, toy):
    from eftflow.ml.artifacts import family_of
    from eftflow.ml.train import TrainingConfig, train_estimator

    method, kind, opts = case
    cfg = TrainingConfig(method=method, **{**SMALL, **opts}, seed=3)
    res = train_estimator(toy_sets[kind], cfg, None)
    fam = family_of(method)
    test = _test_data(kind, np.random.default_rng(11), toy)
    err, pred = _error(fam, res["model"], test)
    err0, _ = _error(fam, _untrained(res["spec"], res["model"], 3), test)
    assert np.all(np.isfinite(pred))
    h = res["history"]
    assert len(h["train"]) == res["epochs_run"] and h["train"][-1] < h["train"][0]
    if fam == "density":
        true_nll = float(-np.mean(test["log_p"]))
        assert err < err0 - 0.05, (err, err0)
        assert err < true_nll + 0.15, (err, true_nll)  # close to the entropy
    else:
        assert err < 0.5 * err0, (err, err0)
        scale = np.std(test["t"] if fam == "score" else np.clip(test["log_r"], -CLIP, CLIP))
        assert np.sqrt(err) < 0.7 * scale, (np.sqrt(err), scale)  # right scale
