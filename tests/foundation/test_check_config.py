"""``eftflow check-config``: workflow config files validated as the workflow would use them,
malformed YAML named by file, line and column (Snakemake's own message names neither)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from eftflow.cli import main
from eftflow.config import check_workflow_config
from eftflow.errors import ConfigError

DEFAULT = Path(__file__).resolve().parents[2] / "config" / "config.yaml"


def test_default_config_is_valid(capsys):
    assert main(["check-config", str(DEFAULT)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{DEFAULT}: valid\n") and "  benchmarks: sm, w_pos, y_pos\n" in out


def test_files_merge_in_order_and_show_prints_the_whole_config(tmp_path, capsys):
    extra = tmp_path / "extra.yaml"
    extra.write_text("run_name: small\nmorphing: {n_trials: 7}\n")
    cfg = check_workflow_config([DEFAULT, extra])
    assert cfg["run_name"] == "small" and cfg["morphing"]["n_trials"] == 7
    assert cfg["morphing"]["max_overall_power"] == 2  # nested mappings merged, defaults kept
    assert main(["check-config", str(DEFAULT), str(extra), "--show"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["run_name"] == "small" and shown["seed"] == cfg["seed"]


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("seed: 1\nrun_name: [oops\n", "line 3, column 1", "malformed YAML"),
        ("- a\n- b\n", None, "mapping of keys, not a list"),
        ("morphing: {n_trial: 3}\n", "morphing", "unknown key 'n_trial'"),
        (
            "augmentation: {samples: [{name: t, method: local, n_samples: 10, theta: smm}]}\n",
            None,
            "'smm'",
        ),
    ],
)
def test_bad_files_name_file_and_place(tmp_path, capsys, text, field, words):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError, match=words) as err:
        check_workflow_config([bad])
    assert err.value.file == str(bad)
    if field is not None:
        assert err.value.field == field
    assert main(["check-config", str(bad)]) == 2
    assert str(bad) in capsys.readouterr().err
