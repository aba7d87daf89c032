"""eftflow.generate."""
