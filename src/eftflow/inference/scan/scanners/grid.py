"""``grid``: a regular grid of cell centres in the unit cube (equal prior mass per point)."""

from __future__ import annotations

import numpy as np

from eftflow.errors import ConfigError
from eftflow.inference.scan.scanners.base import (
    BaseScanner,
    ScanResult,
    batch_schema,
    register_scanner,
)

__all__ = ["GridScanner"]


@register_scanner("grid")
class GridScanner(BaseScanner):
    """``points_per_dim`` (an integer, or one per parameter) cell centres per axis."""

    options_schema = batch_schema(
        points_per_dim={
            "oneOf": [
                {"type": "integer", "minimum": 1},
                {"type": "array", "items": {"type": "integer", "minimum": 1}},
            ],
            "default": 10,
        }
    )

    @classmethod
    def check_dimensions(cls, options: dict, ndim: int, *, file: str | None = None) -> None:
        ppd = options["points_per_dim"]
        if not isinstance(ppd, int) and len(ppd) != ndim:
            raise ConfigError(
                f"points_per_dim has {len(ppd)} entries for {ndim} sampled parameters",
                file=file,
                field="scanner.options.points_per_dim",
            )

    def run(self, problem, options) -> ScanResult:
        self.check_dimensions(options, problem.ndim)
        ppd = options["points_per_dim"]
        ppd = [ppd] * problem.ndim if isinstance(ppd, int) else list(ppd)
        axes = [(np.arange(k) + 0.5) / k for k in ppd]
        total = int(np.prod(ppd))
        b = options["batch_size"]
        best = (-np.inf, None)
        for start in range(0, total, b):
            idx = np.arange(start, min(total, start + b))
            multi = np.unravel_index(idx, ppd)
            u = np.column_stack([axes[d][multi[d]] for d in range(problem.ndim)])
            ll, _ = problem.evaluate(u)
            i = int(np.argmax(ll))
            if ll[i] > best[0]:
                best = (float(ll[i]), u[i].tolist())
        return ScanResult(info={"n_points": total, "best_loglike": best[0], "best_unit": best[1]})
