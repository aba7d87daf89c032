"""Configuration: schema validation, defaults, error messages naming file and key path."""

import json

import pytest
import yaml

from eftflow.config import (
    check_benchmark_references,
    config_hash,
    load_config,
    load_schema,
    validate_config,
)
from eftflow.errors import ConfigError


def write(tmp_path, text, name="config.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_default_config_is_valid_and_complete(default_config):
    assert [p["name"] for p in default_config["parameters"]] == ["W", "Y"]
    assert default_config["morphing"]["n_trials"] == 100
    assert default_config["finite_differences"] == {"epsilon": None}


def test_every_schema_key_has_description_and_default():
    """Walk the schema: each property has a description, and a default unless it is required."""

    def walk(node, path, required=()):
        if node.get("type") == "object" or "properties" in node:
            assert node.get("additionalProperties") is False or "additionalProperties" in node, path
            for key, sub in node.get("properties", {}).items():
                assert "description" in sub, f"{path}.{key} has no description"
                if key not in node.get("required", []):
                    assert "default" in sub, f"{path}.{key} has no default"
                walk(sub, f"{path}.{key}")
        if "items" in node and isinstance(node["items"], dict):
            walk(node["items"], f"{path}[]")

    walk(load_schema(), "config")


def test_unknown_key(tmp_path):
    p = write(tmp_path, "morphing:\n  max_overal_power: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    msg = str(err.value)
    assert (
        str(p) in msg
        and "morphing" in msg
        and "'max_overal_power'" in msg
        and "max_overall_power" in msg
    )


def test_wrong_type(tmp_path):
    p = write(tmp_path, "morphing:\n  n_trials: many\n")
    with pytest.raises(ConfigError, match=r"morphing\.n_trials: expected integer, got 'many'"):
        load_config(p)


def test_nested_list_path(tmp_path):
    p = write(tmp_path, "parameters:\n  - name: a\n    parameter_range: [0, x]\n")
    with pytest.raises(ConfigError, match=r"parameters\[0\]\.parameter_range\[1\]"):
        load_config(p)


def test_bad_yaml_names_line(tmp_path):
    p = write(tmp_path, "morphing:\n  n_trials: [1, 2\n")
    with pytest.raises(ConfigError, match=r"line \d+, column \d+: malformed YAML"):
        load_config(p)


@pytest.mark.parametrize("section", ["parameters", "benchmarks"])
def test_duplicate_names(tmp_path, section):
    cfg = {
        "parameters": [{"name": "a"}, {"name": "b"}],
        "benchmarks": [{"name": "sm", "values": {"a": 0}}, {"name": "x", "values": {"b": 1}}],
    }
    cfg[section][1]["name"] = cfg[section][0]["name"]
    p = write(tmp_path, yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=rf"{section}\[1\]\.name: duplicate name"):
        load_config(p)


def test_benchmark_with_unknown_parameter(tmp_path):
    p = write(tmp_path, "parameters: [{name: a}]\nbenchmarks: [{name: sm, values: {b: 0}}]\n")
    with pytest.raises(ConfigError, match=r"benchmarks\[0\]\.values\.b: unknown parameter 'b'"):
        load_config(p)


@pytest.mark.parametrize(
    "transform",
    [
        "__import__('os')",
        "theta.__class__",
        "[t for t in theta]",
        "lambda: 1",
        "open('x')",
        "'a' * 3",
    ],
)
def test_transform_must_be_plain_arithmetic(tmp_path, transform):
    cfg = {"parameters": [{"name": "a", "param_card_transform": transform}], "benchmarks": []}
    p = write(tmp_path, yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=r"parameters\[0\]\.param_card_transform"):
        load_config(p)


def test_transform_arithmetic_accepted(tmp_path):
    cfg = {
        "parameters": [{"name": "a", "param_card_transform": "16.52*theta + sqrt(2)**2"}],
        "benchmarks": [],
    }
    assert load_config(write(tmp_path, yaml.safe_dump(cfg)))["parameters"][0][
        "param_card_transform"
    ]


def test_overrides_and_hash(tmp_path):
    a = load_config(None)
    b = load_config(None, overrides={"morphing": {"n_trials": 7}})
    assert b["morphing"]["n_trials"] == 7 and b["morphing"]["max_overall_power"] == 2
    assert config_hash(a) != config_hash(b)
    assert config_hash(a) == config_hash(json.loads(json.dumps(a)))


def test_validate_inline_dict():
    cfg = validate_config({"seed": 3})
    assert cfg["seed"] == 3 and cfg["run_name"] == ""
    with pytest.raises(ConfigError, match="seed"):
        validate_config({"seed": -1})


def test_snakemake_validate_uses_same_schema(repo_root):
    """Snakemake's validate (as common.smk calls it) accepts the default and rejects a bad key."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    schema = str(repo_root / "workflow" / "schemas" / "config.schema.yaml")
    cfg = yaml.safe_load((repo_root / "config" / "config.yaml").read_text())
    validate(cfg, schema)
    assert cfg["morphing"]["n_trials"] == 100
    with pytest.raises(WorkflowError):
        validate({"not_a_key": 1}, schema)


def test_benchmark_references_checked_at_once(tmp_path):
    """A config without `sm` whose defaults name `sm`, or a typo in a θ spec, fails at
    validation with the key, not in the augmentation stage hours later."""
    params = [{"name": "W", "lha_block": "eft", "lha_id": 1, "parameter_range": [-1, 1]}]
    cfg = validate_config({"parameters": params}, file="p.yaml")  # a stage's partial config
    with pytest.raises(ConfigError) as err:
        check_benchmark_references(cfg, file="p.yaml")
    assert err.value.field == "augmentation.samples[0].theta"
    assert "unknown benchmark 'sm'; declared benchmarks: none" in str(err.value)
    cfg = {
        "parameters": params,
        "benchmarks": [{"name": "sm", "values": {"W": 0.0}}],
        "augmentation": {"samples": [
            {"name": "a", "method": "ratio", "n_samples": 10, "theta0": "sm",
             "theta1": {"type": "benchmarks", "names": ["sm", "smm"]}},
        ]},
    }  # fmt: skip
    with pytest.raises(ConfigError) as err:
        check_benchmark_references(validate_config(cfg), file="p.yaml")
    assert err.value.field == "augmentation.samples[0].theta1.names[1]"
    cfg["augmentation"]["samples"][0]["theta1"] = "morphing_basis_vector_3"  # added by setup
    check_benchmark_references(validate_config(cfg), file="p.yaml")
    cfg["generation"] = {"samples": {"s": {"sampling_benchmark": "nope"}}}
    with pytest.raises(ConfigError, match="unknown benchmark 'nope'") as err:
        check_benchmark_references(validate_config(cfg), file="p.yaml")
    assert err.value.field == "generation.samples.s.sampling_benchmark"


@pytest.mark.parametrize(
    ("command", "what"),
    [
        ("fit", "a fit description"),
        ("compute-limits", "a limits description"),
        ("build-model", "a model spec"),
        ("scan", "a scan spec"),
    ],
)
def test_workflow_config_given_to_a_spec_command_is_named(
    command, what, repo_root, tmp_path, capsys
):
    from eftflow.cli import main

    toy = str(repo_root / "config/examples/toy.yaml")
    assert main([command, toy, "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(
        f"eftflow: error: {toy}: this is a workflow configuration (like config/config.yaml), "
        f"not {what}; see docs/"
    )
    assert err.endswith(".md for its format") and not list(tmp_path.iterdir())
