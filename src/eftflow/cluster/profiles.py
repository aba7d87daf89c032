"""Snakemake profiles shipped with eftflow (``profiles/`` of the workflow, package data too).

``profiles/default`` is the workflow profile Snakemake applies to every run in the workflow
directory; ``profiles/slurm`` is the compute profile for SLURM clusters. Snakemake finds a profile
given by bare name (``snakemake --profile slurm``) only in ``$XDG_CONFIG_HOME/snakemake/<name>``
(default ``~/.config/snakemake/<name>``) or ``/etc/xdg/snakemake/<name>``, so
:func:`install_profile` copies one there.

Example
-------
>>> sorted(available_profiles())
['default', 'slurm']
"""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

from eftflow.errors import InputError

__all__ = ["available_profiles", "profile_source", "user_profile_dir", "install_profile"]


def available_profiles() -> list[str]:
    """Names of the profiles shipped with eftflow."""
    root = resources.files("eftflow") / "data" / "profiles"
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "config.yaml").is_file())


def profile_source(name: str) -> Path:
    """The directory of the shipped profile ``name``."""
    names = available_profiles()
    if name not in names:
        raise InputError(
            f"unknown profile {name!r}; available: {', '.join(names)}", field="profile"
        )
    return Path(str(resources.files("eftflow") / "data" / "profiles" / name))


def user_profile_dir(name: str, env: dict | None = None) -> Path:
    """Where ``snakemake --profile <name>`` looks: ``$XDG_CONFIG_HOME/snakemake/<name>``."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or os.path.join(
        env.get("HOME") or str(Path.home()), ".config"
    )
    return Path(base) / "snakemake" / name


def install_profile(
    name: str = "slurm", dest: str | Path | None = None, *, force: bool = False
) -> Path:
    """Copy the shipped profile ``name`` to ``dest`` (default :func:`user_profile_dir`) and return it.

    The copy is made in a temporary directory next to ``dest`` and renamed into place, so an
    interrupted install leaves nothing half-written.

    Raises
    ------
    InputError
        If the profile is unknown, or ``dest`` exists and ``force`` is false.
    """
    source = profile_source(name)
    target = Path(dest) if dest is not None else user_profile_dir(name)
    if target.exists() and not force:
        raise InputError(
            "a profile is already installed here; use --force to replace it", file=str(target)
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for item in source.iterdir():
            if item.is_file():
                shutil.copyfile(item, tmp / item.name)  # follows the package-data symlinks
        os.chmod(tmp, 0o755)
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
