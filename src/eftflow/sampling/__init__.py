"""eftflow.sampling."""
