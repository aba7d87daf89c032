"""eftflow.cluster."""
