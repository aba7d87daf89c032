# eftflow workflow: one rule per stage, thin rules calling one `eftflow <command>` each.
# Run locally: `snakemake --cores 2` (profiles/default is picked up automatically);
# on a SLURM cluster: `snakemake --profile profiles/slurm`. Targets: all, all_setup, ...
# The config is validated against workflow/schemas/config.schema.yaml in common.smk.


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/setup.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/combine.smk"
include: "workflow/rules/sampling.smk"
include: "workflow/rules/scan.smk"


rule all:
    default_target: True
    input:
        all_targets(),
