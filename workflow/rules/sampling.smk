# Stage: sample augmentation ("gold mining") and Fisher information from the combined store.


rule augment_samples:
    input:
        events=f"{RESULTS}/combine_events/events.zarr",
        setup=f"{RESULTS}/setup/setup.h5",
    output:
        directory(f"{RESULTS}/augment_samples"),
    log:
        f"{LOGS}/augment_samples/augment_samples.log",
    benchmark:
        f"{BENCH}/augment_samples/augment_samples.tsv"
    conda:
        ENV
    threads: 4
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        config=lambda wc: stage_config("augmentation"),
    shell:
        "eftflow -v augment-samples {input.events} --setup {input.setup} -o {output} "
        "--config '{params.config}' --threads {threads} --memory-mb {resources.mem_mb} 2> {log}"


rule compute_fisher_information:
    input:
        events=f"{RESULTS}/combine_events/events.zarr",
        setup=f"{RESULTS}/setup/setup.h5",
    output:
        info=f"{RESULTS}/compute_fisher_information/fisher_information.json",
        plots=directory(f"{RESULTS}/compute_fisher_information/plots"),
    log:
        f"{LOGS}/compute_fisher_information/compute_fisher_information.log",
    benchmark:
        f"{BENCH}/compute_fisher_information/compute_fisher_information.tsv"
    group:
        "fisher_and_limits"
    conda:
        ENV
    threads: 4
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        config=lambda wc: stage_config("fisher"),
    shell:
        "eftflow -v compute-fisher-information {input.events} --setup {input.setup} "
        "-o {output.info} --plot {output.plots} --config '{params.config}' "
        "--threads {threads} --memory-mb {resources.mem_mb} 2> {log}"


rule all_augment:
    input:
        rules.augment_samples.output,


rule all_fisher:
    input:
        rules.compute_fisher_information.output,
