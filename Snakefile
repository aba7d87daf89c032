# eftflow workflow: one rule per stage, thin rules calling one `eftflow <command>` each.
# Run locally: `snakemake --cores 2` (profiles/default is picked up automatically);
# on a SLURM cluster: `snakemake --profile profiles/slurm`. Targets: all, all_setup, ...,
# all_report (`rule all` ends with the HTML report, results/[<run_name>/]report/report.html).
# The config is validated against workflow/schemas/config.schema.yaml in common.smk.


# The default configuration, unless config files are given with --configfile: those replace it
# (several are merged in order) instead of being merged into it, so that an example's samples do
# not come with the default ones. (Decided here rather than with --replace-workflow-config, which
# Snakemake does not pass on to SLURM jobs.)
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/setup.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/combine.smk"
include: "workflow/rules/sampling.smk"
include: "workflow/rules/limits.smk"
include: "workflow/rules/ml.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/scan.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
