"""User scan functions for the scan tests (imported through a scan file's ``imports:``)."""

from __future__ import annotations

import time

from eftflow.inference.scan import InvalidPoint, scan_function


@scan_function(kind="likelihood", dependencies=["x", "y"])
def slow_gaussian(inputs, options):
    """A 2-D Gaussian log-likelihood that takes ``options['sleep']`` seconds."""
    time.sleep(options.get("sleep", 0.0))
    return -0.5 * ((inputs["x"] - 0.3) ** 2 / 0.01 + (inputs["y"] + 0.2) ** 2 / 0.04)


@scan_function(capability="halfx", dependencies=["x"])
def half_or_invalid(inputs, options):
    """x / 2, but invalid for x > 0.8."""
    if inputs["x"] > 0.8:
        raise InvalidPoint("x too large")
    return inputs["x"] / 2
