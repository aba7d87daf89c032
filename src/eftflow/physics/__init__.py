"""eftflow.physics."""
