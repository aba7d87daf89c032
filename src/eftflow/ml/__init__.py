"""eftflow.ml."""
