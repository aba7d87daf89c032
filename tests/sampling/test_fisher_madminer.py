"""Same numbers as MadMiner 0.9.6 on the same events (exported with eftflow's export_madminer).

Truth and rate information agree to 1e-8 relative; MadMiner's truth-information covariance is
exactly 9× ours (its sign error), with and without mixed sampling benchmarks; cross sections agree.
"""

import logging

import numpy as np
import pytest

from eftflow.inference.fisher import FisherInformation
from eftflow.sampling import cross_sections

from .conftest import write_toy_store

madminer = pytest.importorskip("madminer")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, toy):
    from eftflow.store.madminer_io import export_madminer

    d = tmp_path_factory.mktemp("mm")
    toy.save(d / "setup.h5")
    store = write_toy_store(
        d / "ev.zarr", toy, 3000, 8, sampling=("sm", "t1_pos"), partitions=None, chunk=2500
    )
    export_madminer(store, d / "setup.h5", d / "events.h5")
    return store, d / "events.h5"


def _madminer_fisher(path):
    from madminer.fisherinformation import FisherInformation as MMFisher

    logging.getLogger("madminer").setLevel(logging.WARNING)
    return MMFisher(str(path))


@pytest.mark.parametrize("theta", [[0.0, 0.0], [0.4, -0.3]])
def test_truth_and_rate_information_equal_madminer(exported, toy, theta):
    store, h5 = exported
    mm = _madminer_fisher(h5)
    ours = FisherInformation(store, toy)
    info_mm, cov_mm = mm.truth_information(np.array(theta), luminosity=300.0)
    res = ours.truth_information(theta, luminosity=300.0)
    info, cov = res  # unpacks as MadMiner's (information, covariance)
    assert info is res.information and cov is res.covariance
    np.testing.assert_allclose(res.information, info_mm, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(cov_mm, 9.0 * res.covariance, rtol=1e-8, atol=1e-12)
    rate_mm, _ = mm.rate_information(np.array(theta), luminosity=300.0)
    np.testing.assert_allclose(
        ours.rate_information(theta, 300.0).information, rate_mm, rtol=1e-8, atol=1e-10
    )


def test_histo_information_equals_madminer(exported, toy):
    store, h5 = exported
    mm = _madminer_fisher(h5)
    theta = np.array([0.2, 0.1])
    info_mm, _ = mm.histo_information(theta, 300.0, "x", 6, histrange=(-2.0, 2.0))
    ours = FisherInformation(store, toy).histo_information(theta, 300.0, "x", 6, (-2.0, 2.0))
    np.testing.assert_allclose(ours.information, info_mm, rtol=1e-8)


def test_cross_sections_equal_madminer(exported, toy):
    from madminer.sampling import SampleAugmenter as MMAugmenter
    from madminer.sampling import morphing_points

    store, h5 = exported
    thetas = np.array([[0.0, 0.0], [0.5, 0.0], [-0.3, 0.8]])
    _, xs_mm, _ = MMAugmenter(str(h5)).cross_sections(morphing_points(thetas))
    ours = cross_sections(store, toy, thetas)
    np.testing.assert_allclose(ours["xsec"], xs_mm, rtol=1e-10)
