"""eftflow.plotting: all figures (matplotlib, headless Agg backend). Plots compute nothing new."""

__all__ = ["use_agg", "save_figure", "finish", "luminosity_text"]


def luminosity_text(luminosity) -> str:
    """An integrated luminosity in pb⁻¹ (eftflow's unit) as text, with fb⁻¹ (or ab⁻¹) beside it.

    >>> luminosity_text(100000.0)
    '100000 pb⁻¹ (100 fb⁻¹)'
    >>> luminosity_text(3e6), luminosity_text(36.1)
    ('3e+06 pb⁻¹ (3 ab⁻¹)', '36.1 pb⁻¹ (0.0361 fb⁻¹)')
    """
    lum = float(luminosity)
    other = f"{lum / 1e6:g} ab⁻¹" if lum >= 1e6 else f"{lum / 1e3:g} fb⁻¹"
    return f"{lum:g} pb⁻¹ ({other})"


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
