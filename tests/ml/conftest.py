"""Exact toy training sets for the estimator tests.

Toy model: p(x|θ) = φ(x) (1 + θ1 x + θ2 (x² − 1))² / (1 + θ1² + 2 θ2²) with φ the standard
normal density. Since x is the whole event, joint quantities are exact: t(x|0) = (2x, 2(x²−1)),
I(0) = diag(4, 8) per event, log r(x|θ0, 0) = log p(x|θ0) − log φ(x).
"""

from __future__ import annotations

import numpy as np
import pytest


def norm(theta):
    theta = np.atleast_2d(theta)
    return 1 + theta[:, 0] ** 2 + 2 * theta[:, 1] ** 2


def log_p(x, theta):
    theta = np.atleast_2d(theta)
    f = 1 + theta[:, 0] * x + theta[:, 1] * (x * x - 1)
    return -0.5 * x * x - 0.5 * np.log(2 * np.pi) + np.log(f * f) - np.log(norm(theta))


def score(x, theta):
    theta = np.atleast_2d(theta)
    f = 1 + theta[:, 0] * x + theta[:, 1] * (x * x - 1)
    n = norm(theta)
    return np.stack(
        [2 * x / f - 2 * theta[:, 0] / n, 2 * (x * x - 1) / f - 4 * theta[:, 1] / n], axis=1
    )


def sample(theta, rng, scale=1.6):
    """Rejection sampling of x ~ p(x|θ) for each row of θ, proposal N(0, scale²)."""
    theta = np.atleast_2d(theta)
    grid = np.linspace(-12, 12, 481)

    def ratio(x, t):  # f(x)² φ(x) / q(x), up to constants
        f = 1 + t[:, :1] * x + t[:, 1:] * (x * x - 1)
        return f * f * np.exp(-0.5 * x * x * (1 - 1 / scale**2))

    bound = 1.05 * ratio(grid[None, :], theta).max(axis=1)
    out = np.empty(len(theta))
    todo = np.arange(len(theta))
    while len(todo):
        x = scale * rng.normal(size=len(todo))
        ok = rng.random(len(todo)) * bound[todo] < ratio(x[:, None], theta[todo])[:, 0]
        out[todo[ok]] = x[ok]
        todo = todo[~ok]
    return out


def write_set(path, arrays, chunk=2000, dtype="float32", kind=None):
    """A training set laid out as eftflow.sampling writes it (float32, y and r_xz as (n, 1)).

    ``kind`` is the sample kind recorded as the ``method`` attribute (local, ratio, density...).
    """
    import zarr

    g = zarr.open_group(str(path), mode="w", zarr_format=3)
    for k, v in arrays.items():
        v = np.asarray(v, dtype=dtype)
        if k in ("y", "r_xz") and v.ndim == 1:
            v = v[:, None]
        g.create_array(k, shape=v.shape, chunks=(chunk,) + v.shape[1:], dtype=dtype)[:] = v
    attrs = {"format": "eftflow-training", "parameter_names": ["theta_1", "theta_2"],
             "observable_names": ["x"]}  # fmt: skip
    g.attrs.update(attrs if kind is None else {**attrs, "method": kind})
    return path


def make_local(path, n, seed=0):
    """SALLY/SALLINO set with the names sample_train_local writes (theta, t_xz)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return write_set(
        path,
        {"x": x[:, None], "theta": np.zeros((n, 2)), "t_xz": score(x, np.zeros(2))},
        kind="local",
    )


def make_density(path, n, seed=0, prior=0.6):
    """NDE/SCANDAL set: θ from a flat prior, x ~ p(x|θ), t_xz = t(x|θ) (names as sampling)."""
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-prior, prior, size=(n, 2))
    x = sample(theta, rng)
    return write_set(
        path, {"x": x[:, None], "theta": theta, "t_xz": score(x, theta)}, kind="density"
    )


def make_ratio(path, n, seed=0, prior=0.6, doubly=False):
    rng = np.random.default_rng(seed)
    theta0 = rng.uniform(-prior, prior, size=(n, 2))
    theta1 = rng.uniform(-prior, prior, size=(n, 2)) if doubly else np.zeros((n, 2))
    y = (rng.random(n) < 0.5).astype(float)
    x = sample(np.where(y[:, None] == 1, theta1, theta0), rng)
    log_r = log_p(x, theta0) - log_p(x, theta1)  # row-wise
    arrays = {
        "x": x[:, None],
        "theta0": theta0,
        "theta1": theta1,
        "y": y,
        "r_xz": np.exp(log_r),
        "t_xz0": score(x, theta0),
        "t_xz1": score(x, theta1),
    }
    return write_set(path, arrays, kind="more_ratios" if doubly else "ratio")


@pytest.fixture(scope="session")
def toy_sets(tmp_path_factory):
    d = tmp_path_factory.mktemp("toy_sets")
    return {
        "local": make_local(d / "local.zarr", 20000),
        "ratio": make_ratio(d / "ratio.zarr", 20000, seed=1),
        "doubly": make_ratio(d / "doubly.zarr", 20000, seed=3, doubly=True),
        "density": make_density(d / "density.zarr", 10000, seed=4),
    }


@pytest.fixture(scope="session")
def toy():
    return {"log_p": log_p, "score": score, "sample": sample, "norm": norm}


#: morphing components of the toy (dσ quadratic in θ)
TOY_COMPONENTS = [[0, 0], [1, 0], [0, 1], [2, 0], [1, 1], [0, 2]]
