"""A slow, obviously-correct LHE event parser used as the reference in tests."""

from __future__ import annotations

import gzip
import re

import numpy as np


def reference_parse(path):
    with open(path, "rb") as fh:
        opener = gzip.open if fh.read(2) == b"\x1f\x8b" else open
    with opener(path, "rt") as fh:
        text = fh.read()
    events = re.findall(r"<event[^>]*>\n(.*?)</event>", text, re.S)
    info, particles, weights = [], [], []
    for ev in events:
        lines = ev.split("\n")
        head = [float(t) for t in lines[0].split()]
        info.append(head)
        nup = int(head[0])
        particles += [[float(t) for t in line.split()] for line in lines[1 : 1 + nup]]
        weights.append(
            [float(v) for v in re.findall(r"<wgt id=['\"][^'\"]*['\"]>\s*(\S+)\s*</wgt>", ev)]
        )
    return np.array(info), np.array(particles), np.array(weights)
