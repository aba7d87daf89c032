"""Plain-JSON form of results that hold numpy arrays and scalars (for ``json.dumps``)."""

from __future__ import annotations

import numpy as np

__all__ = ["to_jsonable"]


def to_jsonable(value):
    """``value`` with numpy arrays as lists, numpy scalars as Python numbers, tuples as lists and
    dict keys as strings, recursively; everything else unchanged.

    >>> to_jsonable({1: np.arange(2), "x": (np.float64(0.5),)})
    {'1': [0, 1], 'x': [0.5]}
    """
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
