"""Common command-line mistakes: one clear message naming the file and the field, exit status 2,
no traceback, nothing written (and never an input destroyed)."""

from __future__ import annotations

import argparse
import json

import pytest

from eftflow.cli import main
from eftflow.cli.common import check_output_paths, load_cluster_config, load_stage_config
from eftflow.errors import ConfigError, InputError

#: the first bytes of an HDF5 file (what a setup.h5 given as a text file starts with)
HDF5_BYTES = b"\x89HDF\r\n\x1a\n" + bytes(range(256))


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def toy_config(repo_root):
    return repo_root / "config" / "examples" / "toy.yaml"


# -- an output path that is an input ------------------------------------------------------------


def test_output_equal_to_the_config_file_leaves_it_untouched(tmp_path, toy_config, capsys):
    config = tmp_path / "toy.yaml"
    config.write_text(toy_config.read_text())
    before = config.read_bytes()
    assert main(["setup", "--config", str(config), "-o", str(config)]) == 2
    line = _error(capsys)
    assert f"{config}: --output: the output path is the input 'config'" in line
    assert config.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy.yaml"]


def test_output_directory_holding_the_input_store_is_refused_before_any_work(tmp_path, capsys):
    store = tmp_path / "combined" / "events.zarr"  # never opened: the check comes first
    store.mkdir(parents=True)
    (store / "zarr.json").write_text("{}")
    out = tmp_path / "combined"
    code = main(["augment-samples", str(store), "--setup", "s.h5", "-o", str(out)])
    assert code == 2
    line = _error(capsys)
    assert f"{out}: --output: the output path is a directory holding the input 'store'" in line
    assert (store / "zarr.json").read_text() == "{}"


def test_plot_path_equal_to_output_is_refused(tmp_path, toy_config, capsys):
    out = tmp_path / "setup.h5"
    assert main(["setup", "--config", str(toy_config), "-o", str(out), "--plot", str(out)]) == 2
    assert f"{out}: --plot: is given both as --plot and as --output" in _error(capsys)
    assert not list(tmp_path.iterdir())


def test_scan_may_keep_its_scan_file_in_its_output_directory(tmp_path):
    scanfile = tmp_path / "out" / "scan.yaml"
    scanfile.parent.mkdir()
    scanfile.write_text("seed: 1\n")
    args = argparse.Namespace(
        scanfile=str(scanfile), output=str(tmp_path / "out"), output_updated_in_place=True
    )
    check_output_paths(args)  # a scan updates its directory in place: allowed
    args.output_updated_in_place = False
    with pytest.raises(ConfigError, match="directory holding the input 'scanfile'"):
        check_output_paths(args)
    args.output = str(scanfile)
    args.output_updated_in_place = True
    with pytest.raises(ConfigError, match="is the input 'scanfile'"):
        check_output_paths(args)


# -- option values out of range --------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, option, expected",
    [
        (["generate-events", "--setup", "s.h5", "--sample", "sm", "-o", "o.zarr", "--seed", "-1"],
         "--seed", ">= 0"),
        (["generate-events", "--setup", "s.h5", "--sample", "sm", "-o", "o.zarr", "--job", "-1"],
         "--job", ">= 0"),
        (["generate-events", "--setup", "s.h5", "--sample", "sm", "-o", "o.zarr", "--attempt", "0"],
         "--attempt", ">= 1"),
        (["generate-events", "--setup", "s.h5", "--sample", "sm", "-o", "o.zarr", "--retries",
          "-3"], "--retries", ">= 0"),
        (["shower-events", "in.lhe", "--setup", "s.h5", "-o", "o.zarr", "--global-seed", "-1"],
         "--global-seed", ">= 0"),
        (["shower-events", "in.lhe", "--setup", "s.h5", "-o", "o.zarr", "--job", "-2"],
         "--job", ">= 0"),
        (["combine-events", "a.zarr", "-o", "o.zarr", "--seed", "-1"], "--seed", ">= 0"),
        (["combine-events", "a.zarr", "-o", "o.zarr", "--max-failed-fraction", "2"],
         "--max-failed-fraction", "[0, 1)"),
        (["combine-events", "a.zarr", "-o", "o.zarr", "--max-failed-fraction", "nan"],
         "--max-failed-fraction", "[0, 1)"),
        (["train-estimator", "t.zarr", "-o", "m", "--member", "-1"], "--member", ">= 0"),
        (["scan", "scan.yaml", "--stop-after", "-1"], "--stop-after", ">= 1"),
        (["analyse-events", "o.zarr", "--setup", "s.h5", "-o", "a.zarr", "--threads", "-1"],
         "--threads", ">= 1"),
    ],
)  # fmt: skip
def test_out_of_range_options_are_refused_by_the_parser(argv, option, expected, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    line = _error(capsys)
    assert f"argument {option}: expected" in line and expected in line


# -- --config and --cluster-config -------------------------------------------------------------


def test_binary_file_as_config_names_the_file(tmp_path, capsys):
    h5 = tmp_path / "setup.h5"
    h5.write_bytes(HDF5_BYTES)
    out = tmp_path / "new.h5"
    assert main(["setup", "--config", str(h5), "-o", str(out)]) == 2
    assert f"{h5}: byte 0: binary content, not a YAML configuration file" in _error(capsys)
    assert not out.exists()


@pytest.mark.parametrize(
    "value, message",
    [
        ('{"parameters": [', "--config: column 17: inline JSON is malformed"),
        ("[1, 2]", "--config: inline JSON must be an object"),
    ],
)
def test_bad_inline_json_names_the_option(tmp_path, capsys, value, message):
    assert main(["setup", "--config", value, "-o", str(tmp_path / "s.h5")]) == 2
    assert message in _error(capsys)
    assert not list(tmp_path.iterdir())


def test_bad_inline_cluster_config_names_its_option():
    with pytest.raises(ConfigError) as err:
        load_cluster_config('{"mode": ')
    assert err.value.file == "--cluster-config" and err.value.field == "column 9"
    with pytest.raises(ConfigError) as err:
        load_stage_config('{"a": ')
    assert err.value.file == "--config"


def test_config_key_errors_name_the_config_file(tmp_path, toy_config, capsys):
    setup = tmp_path / "setup.h5"
    assert main(["setup", "--config", str(toy_config), "-o", str(setup)]) == 0
    out = tmp_path / "ev.zarr"
    argv = ["generate-events", "--setup", str(setup), "--config", str(toy_config), "-o", str(out)]
    assert main([*argv, "--sample", "nosuch"]) == 2
    assert f"{toy_config}: generation.samples: unknown sample 'nosuch'" in _error(capsys)
    assert main([*argv, "--sample", "sm", "--job", "7"]) == 2
    assert f"{toy_config}: generation.samples.sm.n_jobs: job index 7" in _error(capsys)
    inline = '{"combine": {"bogus": 1}}'
    assert main(["combine-events", str(out), "-o", str(tmp_path / "c.zarr"), "--config", inline])
    assert "--config: combine: unknown key(s) ['bogus']" in _error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["setup.h5"]


# -- the wrong kind of file ------------------------------------------------------------------


def test_directory_as_setup_file(tmp_path, capsys):
    store = tmp_path / "events.zarr"
    store.mkdir()
    argv = ["generate-events", "--setup", str(store), "--sample", "sm", "-o", str(tmp_path / "o")]
    assert main(argv) == 2
    assert f"{store}: is a directory, not a setup file" in _error(capsys)
    assert [p.name for p in tmp_path.iterdir()] == ["events.zarr"]


def test_file_or_plain_directory_as_event_store(tmp_path):
    from eftflow.store.events import EventStore

    h5 = tmp_path / "setup.h5"
    h5.write_bytes(HDF5_BYTES)
    with pytest.raises(InputError, match=r"is a file, not an eftflow event store") as err:
        EventStore(h5)
    assert err.value.file == str(h5)
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(InputError, match=r"is a directory without zarr.json"):
        EventStore(plain)


def test_setup_file_as_estimator(tmp_path):
    from eftflow.ml.artifacts import load_model

    h5 = tmp_path / "setup.h5"
    h5.write_bytes(HDF5_BYTES)
    with pytest.raises(InputError, match="not an estimator: expected a model") as err:
        load_model(h5)
    assert err.value.file == str(h5)


@pytest.mark.parametrize("command", ["fit", "compute-limits", "build-model", "scan"])
def test_binary_file_as_yaml_description(tmp_path, capsys, command):
    h5 = tmp_path / "setup.h5"
    h5.write_bytes(HDF5_BYTES)
    assert main([command, str(h5), "-o", str(tmp_path / "out")]) == 2
    line = _error(capsys)
    assert f"{h5}: byte 0: binary content, not a YAML" in line
    assert [p.name for p in tmp_path.iterdir()] == ["setup.h5"]


@pytest.mark.parametrize("command", ["compute-limits", "build-model", "scan"])
def test_malformed_yaml_description_is_one_line_with_its_position(tmp_path, capsys, command):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    assert main([command, str(bad), "-o", str(tmp_path / "out")]) == 2
    line = _error(capsys)
    assert f"{bad}: line 2, column 1: " in line and "YAML" in line
    assert [p.name for p in tmp_path.iterdir()] == ["bad.yaml"]


def test_write_model_spec_refuses_a_store_that_is_not_an_event_store(tmp_path, capsys):
    h5 = tmp_path / "setup.h5"
    h5.write_bytes(HDF5_BYTES)
    (tmp_path / "ens").mkdir()
    out = tmp_path / "spec.yaml"
    argv = ["write-model-spec", "--store", str(h5), "--setup", str(h5), "--ensemble"]
    assert main([*argv, str(tmp_path / "ens"), "-o", str(out)]) == 2
    assert f"{h5}: is a file, not an eftflow event store" in _error(capsys)
    assert not out.exists()


def test_make_report_unknown_module_and_file_as_results(tmp_path, capsys):
    from eftflow.report.build import load_section_modules

    with pytest.raises(ConfigError, match="cannot import the report section module") as err:
        load_section_modules(["eftflow_no_such_module_qa4"])
    assert err.value.field == "--module"
    results = tmp_path / "results.h5"
    results.write_bytes(HDF5_BYTES)
    out = tmp_path / "report.html"
    assert main(["make-report", "--results", str(results), "-o", str(out)]) == 2
    assert f"{results}: is a file, not the results directory of a run" in _error(capsys)
    assert not out.exists()


# -- training and evaluation -----------------------------------------------------------------


def _training_set(path, method: str):
    import numpy as np
    import zarr

    g = zarr.open_group(str(path), mode="w")
    g.create_array("x", shape=(20, 1), chunks=(10, 1), dtype="float32")[:] = np.ones((20, 1))
    g.create_array("t_xz", shape=(20, 2), chunks=(10, 2), dtype="float32")[:] = 0.0
    g.create_array("theta", shape=(20, 2), chunks=(10, 2), dtype="float32")[:] = 0.0
    g.attrs.update({"method": method, "parameter_names": ["theta_1", "theta_2"]})
    return path


def test_train_ensemble_refuses_a_set_of_the_wrong_kind_before_the_workers_start(tmp_path, capsys):
    ts = _training_set(tmp_path / "test.zarr", "test")
    out = tmp_path / "ens"
    cfg = json.dumps({"training": {"method": "sally", "n_epochs": 1}})
    assert main(["train-ensemble", str(ts), "--config", cfg, "-o", str(out)]) == 2
    line = _error(capsys)
    assert f"{ts}: attrs.method: method 'sally' needs a training set of kind 'local'" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test.zarr"]


def test_train_estimator_refuses_a_setup_that_is_not_a_setup_file(tmp_path, capsys):
    ts = _training_set(tmp_path / "local.zarr", "local")
    wrong = tmp_path / "events.zarr"
    wrong.mkdir()
    cfg = json.dumps({"training": {"method": "sally", "n_epochs": 1}})
    argv = ["train-estimator", str(ts), "--config", cfg, "-o", str(tmp_path / "m")]
    assert main([*argv, "--setup", str(wrong)]) == 2
    assert f"{wrong}: is a directory, not a setup file" in _error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.zarr", "local.zarr"]


@pytest.mark.parametrize(
    "axis",
    [[1.0, 0.0, -2], [1.0, 0.0, 2.5], [1.0, 0.0], ["a", 0.0, 3], [0.0, float("inf"), 3], 5],
)
def test_evaluation_grid_axes_are_checked(axis):
    from eftflow.ml.driver import _grid

    with pytest.raises(ConfigError, match=r"\[low, high, n_points\]") as err:
        _grid({"grid": [[-1.0, 1.0, 3], axis]}, 2)
    assert err.value.field == "evaluation.grid[1]"
    points, shape = _grid({"grid": [[-1.0, 1.0, 3], [0.0, 1.0, 2.0]]}, 2)
    assert points.shape == (6, 2) and shape == (3, 2)
