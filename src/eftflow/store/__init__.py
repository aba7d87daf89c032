"""eftflow.store."""
