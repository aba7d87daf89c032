"""eftflow.plotting: all figures (matplotlib, headless Agg backend). Plots compute nothing new."""


def use_agg():
    """Import matplotlib with the non-interactive Agg backend and return pyplot."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, **savefig_kwargs):
    """Save ``fig`` to ``path`` atomically (a temporary sibling renamed into place when written;
    format from the suffix, PNG without one) and return the path. Keyword arguments go to
    ``fig.savefig`` (e.g. ``dpi``, ``bbox_inches``)."""
    from pathlib import Path

    from eftflow.store.atomic import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", **savefig_kwargs)
    return path


def finish(fig, path, **savefig_kwargs):
    """``fig``, saved first with :func:`save_figure` (tight bounding box) when ``path`` is given."""
    if path is not None:
        save_figure(fig, path, **{"bbox_inches": "tight", **savefig_kwargs})
    return fig
