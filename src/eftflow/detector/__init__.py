"""eftflow.detector."""
