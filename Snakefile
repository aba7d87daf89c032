# eftflow workflow: one rule per stage, thin rules calling one `eftflow <command>` each.
# Run locally: `snakemake --cores 2` (profiles/default is picked up automatically);
# on a SLURM cluster: `snakemake --profile profiles/slurm`. Targets: all, all_setup, ...
# The config is validated against workflow/schemas/config.schema.yaml in common.smk.


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/setup.smk"


rule all:
    input:
        all_targets(),
    default_target: True
