"""eftflow.analysis."""
