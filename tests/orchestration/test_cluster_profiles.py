"""Snakemake profiles: they parse, carry the required keys, do not fight each other, install."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest
import yaml

from eftflow.cli import main as eftflow_main
from eftflow.cluster.profiles import (
    available_profiles,
    install_profile,
    profile_source,
    user_profile_dir,
)
from eftflow.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str) -> dict:
    return yaml.safe_load((ROOT / "profiles" / name / "config.yaml").read_text())


def test_slurm_profile_has_the_required_settings():
    p = _load("slurm")
    assert p["executor"] == "slurm"
    assert p["jobs"] >= 1 and p["latency-wait"] >= 5 and p["retries"] >= 1
    assert p["slurm-status-command"] == "squeue"
    assert p["slurm-init-seconds-before-status-checks"] >= 1
    assert {"runtime", "mem_mb"} <= set(p["default-resources"])
    text = (ROOT / "profiles/slurm/config.yaml").read_text()
    assert "# slurm_partition:" in text and "# slurm_account:" in text  # placeholders, commented


def test_default_profile_is_safe_on_top_of_the_slurm_profile():
    """profiles/default is a workflow profile: Snakemake applies it over --profile slurm key by key."""
    default, slurm = _load("default"), _load("slurm")
    assert default["rerun-incomplete"] is True and default["printshellcmds"] is True
    assert default["keep-going"] is False
    assert not set(default) & set(slurm), (
        "a key in profiles/default would override the slurm profile"
    )
    # `cores` would cap the threads of every SLURM job at the login node's value
    assert not {"cores", "jobs", "executor", "default-resources", "set-resources"} & set(default)


def test_profiles_are_shipped_as_package_data():
    assert available_profiles() == ["default", "slurm"]
    for name in ("default", "slurm"):
        assert filecmp.cmp(
            profile_source(name) / "config.yaml",
            ROOT / "profiles" / name / "config.yaml",
            shallow=False,
        )


def test_user_profile_dir_follows_xdg():
    assert user_profile_dir("slurm", {"XDG_CONFIG_HOME": "/x/cfg"}) == Path(
        "/x/cfg/snakemake/slurm"
    )
    assert user_profile_dir("slurm", {"HOME": "/home/u"}) == Path("/home/u/.config/snakemake/slurm")


def test_install_profile_writes_refuses_and_replaces(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert eftflow_main(["install-profile"]) == 0
    target = tmp_path / "cfg/snakemake/slurm/config.yaml"
    assert yaml.safe_load(target.read_text()) == _load("slurm")
    assert "snakemake --profile slurm" in capsys.readouterr().out

    target.write_text("jobs: 1\n")
    assert eftflow_main(["install-profile", "slurm"]) == 2  # exists: refused, untouched
    err = capsys.readouterr().err
    assert str(target.parent) in err and "--force" in err
    assert target.read_text() == "jobs: 1\n"

    assert eftflow_main(["install-profile", "slurm", "--force"]) == 0
    assert yaml.safe_load(target.read_text()) == _load("slurm")
    left = sorted(p.name for p in (tmp_path / "cfg/snakemake").iterdir())
    assert left == ["slurm"]  # no temporary directories left behind

    dest = tmp_path / "elsewhere" / "wfprofile"
    assert eftflow_main(["install-profile", "default", "--dest", str(dest)]) == 0
    assert yaml.safe_load((dest / "config.yaml").read_text()) == _load("default")


def test_unknown_profile_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="unknown profile 'pbs'; available: default, slurm"):
        install_profile("pbs", tmp_path / "x")
    assert not (tmp_path / "x").exists()
