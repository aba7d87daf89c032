"""Install the fake MG5_aMC into a temporary directory and build setups/jobs for it (tests only)."""

from __future__ import annotations

import shutil
import stat
import sys
from pathlib import Path

__all__ = ["install_fake_mg5", "fake_calls", "eft_setup", "mg_job", "EFT_PARAMETERS"]

SOURCE = Path(__file__).resolve().parent

#: the fake eft_ee model's coefficients (BLOCK DIM6 entries 2-4; entry 1 is Lambda)
EFT_PARAMETERS = (("c1", 2), ("c2", 3), ("c3", 4))


def install_fake_mg5(dest: Path, *, version: str = "3.5.7") -> Path:
    """Copy the fake into ``dest`` (made executable, run with this interpreter); return it."""
    shutil.copytree(SOURCE, dest, ignore=shutil.ignore_patterns("harness.py", "__pycache__"))
    exe = dest / "bin" / "mg5_aMC"
    text = exe.read_text().split("\n", 1)[1]
    exe.write_text(f"#!{sys.executable}\n{text}")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    (dest / "VERSION").write_text(f"version = {version}\ndate = 2024-11-29\n")
    return dest


def fake_calls(mg_dir: Path) -> list[str]:
    """The commands the fake ran (``output <dir>``, ``generate_events <run> <iseed>``)."""
    f = mg_dir / ".fake_calls"
    return f.read_text().splitlines() if f.is_file() else []


def eft_setup(n_params: int = 2, *, transform: str | None = None, extra: dict | None = None):
    """A setup on the fake ``eft_ee`` model: ``n_params`` of c1..c3, quadratic morphing."""
    from eftflow.setup import EFTSetup

    s = EFTSetup()
    for i, (name, lha_id) in enumerate(EFT_PARAMETERS[:n_params]):
        s.add_parameter(
            "dim6",
            lha_id,
            name,
            param_card_transform=transform if i == 0 else None,
            morphing_max_power=2,
            parameter_range=(-1.0, 1.0),
        )
    s.add_benchmark({}, "sm")
    for name, values in (extra or {}).items():
        s.add_benchmark(values, name)
    s.set_morphing(max_overall_power=2, seed=1)
    return s


def mg_job(tmp: Path, mg_path: Path, setup, *, n_events=200, seed=11, sample="sm", job=0, **opts):
    """A :class:`GenerationJob` for the madgraph backend with the fake install."""
    from eftflow.generate.base import GenerationJob

    options = {
        "mg_dir": str(mg_path),
        "model": "eft_ee",
        "process": "e+ e- > mu+ mu- NP<=2",
        "cache_dir": str(tmp / "mg_cache"),
    }
    options.update(opts)
    return GenerationJob(
        sample=sample,
        job_index=job,
        n_events=n_events,
        seed=seed,
        output=tmp / f"{sample}_{job}.lhe.gz",
        setup=setup,
        sampling_benchmark="sm",
        options=options,
    )
