"""eftflow.shower."""
