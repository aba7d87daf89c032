# Stage: combine the analysed event stores into one shuffled, split store; MadMiner export.
# `analysed_stores(wildcards)` (common.smk) lists the analysed stores of all samples and jobs.


rule combine_events:
    input:
        stores=analysed_stores,
        setup=f"{RESULTS}/setup/setup.h5",
    output:
        directory(f"{RESULTS}/combine_events/events.zarr"),
    log:
        f"{LOGS}/combine_events/combine_events.log",
    benchmark:
        f"{BENCH}/combine_events/combine_events.tsv"
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        config=lambda wc: stage_config("combine"),
        max_failed=config["generation"]["max_failed_fraction"],
    shell:
        "eftflow -v combine-events {input.stores} --setup {input.setup} -o {output} "
        "--config '{params.config}' --memory-mb {resources.mem_mb} "
        "--max-failed-fraction {params.max_failed} 2> {log}"


rule export_madminer:
    input:
        store=f"{RESULTS}/combine_events/events.zarr",
        setup=f"{RESULTS}/setup/setup.h5",
    output:
        f"{RESULTS}/export_madminer/events.h5",
    log:
        f"{LOGS}/export_madminer/export_madminer.log",
    benchmark:
        f"{BENCH}/export_madminer/export_madminer.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    shell:
        "eftflow -v export-madminer {input.store} --setup {input.setup} {output} 2> {log}"


rule plot_distributions:
    input:
        store=f"{RESULTS}/combine_events/events.zarr",
        setup=f"{RESULTS}/setup/setup.h5",
    output:
        f"{RESULTS}/plot_distributions/distributions.png",
    log:
        f"{LOGS}/plot_distributions/plot_distributions.log",
    benchmark:
        f"{BENCH}/plot_distributions/plot_distributions.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        args=plot_arguments(),
        seed=config["seed"],
    shell:
        "eftflow -v plot-distributions {input.store} --setup {input.setup} -o {output} "
        "{params.args} --log --seed {params.seed} 2> {log}"


rule all_combine:
    input:
        rules.combine_events.output,
