"""eftflow.inference."""
