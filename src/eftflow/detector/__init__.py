"""eftflow.detector: the Detector protocol and its backends (builtin card, parton smearing, Delphes)."""

__all__: list[str] = []
