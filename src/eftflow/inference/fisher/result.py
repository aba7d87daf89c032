"""The result of a Fisher-information calculation: matrix, covariance, names, and how it was made."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from eftflow.jsonable import to_jsonable

__all__ = ["FisherResult"]


@dataclass
class FisherResult:
    """A Fisher information matrix with the covariance of its Monte-Carlo estimate.

    Attributes
    ----------
    information
        I_ij, shape (k, k), for the parameters ``parameter_names`` (θ, then ν if included).
    covariance
        Cov(I_ij, I_kl), shape (k, k, k, k): the statistical uncertainty from the finite number of
        simulated events (``None`` if not computed).
    kind
        ``truth``, ``rate``, ``histo``, ``histo2d``, ``detector``, ``profiled``, ``projected``, ...
    theta, luminosity
        Where it was evaluated and for which integrated luminosity (pb⁻¹).
    extra
        Method-specific details (binning, numbers of events, ...; JSON-serialisable).
    """

    information: np.ndarray
    covariance: np.ndarray | None
    parameter_names: list
    kind: str
    theta: list | None = None
    luminosity: float | None = None
    extra: dict = field(default_factory=dict)

    def __iter__(self):
        """``information, covariance = result``, as MadMiner's Fisher methods return them."""
        return iter((self.information, self.covariance))

    @property
    def errors(self) -> np.ndarray | None:
        """Standard errors of the matrix elements, shape (k, k)."""
        if self.covariance is None:
            return None
        k = self.information.shape[0]
        return np.sqrt(np.maximum(np.einsum("ijij->ij", self.covariance.reshape(k, k, k, k)), 0.0))

    def to_dict(self) -> dict:
        """JSON-serialisable form (see :meth:`from_dict`)."""
        return {
            "kind": self.kind,
            "parameter_names": list(self.parameter_names),
            "theta": None if self.theta is None else np.asarray(self.theta).tolist(),
            "luminosity": self.luminosity,
            "information": np.asarray(self.information).tolist(),
            "covariance": None if self.covariance is None else np.asarray(self.covariance).tolist(),
            "determinant": float(np.linalg.det(self.information))
            if self.information.size
            else None,
            "eigenvalues": np.linalg.eigvalsh(
                0.5 * (self.information + self.information.T)
            ).tolist(),
            "extra": to_jsonable(self.extra),
        }

    @classmethod
    def from_dict(cls, data: dict) -> FisherResult:
        cov = data.get("covariance")
        return cls(
            information=np.asarray(data["information"], float),
            covariance=None if cov is None else np.asarray(cov, float),
            parameter_names=list(data["parameter_names"]),
            kind=data["kind"],
            theta=data.get("theta"),
            luminosity=data.get("luminosity"),
            extra=data.get("extra") or {},
        )
