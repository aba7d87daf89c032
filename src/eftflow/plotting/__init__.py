"""eftflow.plotting: all figures (matplotlib, headless Agg backend). Plots compute nothing new."""


def use_agg():
    """Import matplotlib with the non-interactive Agg backend and return pyplot."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt
