"""eftflow.analysis: observables, cuts and efficiencies as safe expressions over reconstructed objects; Dask over chunks."""

__all__: list[str] = []
