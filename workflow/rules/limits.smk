# Stage: expected limits on θ grids from the pipeline's likelihoods (Fisher information in the
# Gaussian approximation, and a binned Poisson likelihood of one observable from the combined
# store with the setup's norm systematics profiled or marginalised); config section `limits`.


rule compute_limits:
    input:
        events=f"{RESULTS}/combine_events/events.zarr",
        setup=f"{RESULTS}/setup/setup.h5",
        fisher=f"{RESULTS}/compute_fisher_information/fisher_information.json",
    output:
        limits=f"{RESULTS}/compute_limits/limits.json",
        plots=directory(f"{RESULTS}/compute_limits/plots"),
    log:
        f"{LOGS}/compute_limits/compute_limits.log",
    benchmark:
        f"{BENCH}/compute_limits/compute_limits.tsv"
    group:
        "fisher_and_limits"
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        config=lambda wc: stage_config("limits"),
    shell:
        "eftflow -v compute-limits --store {input.events} --setup {input.setup} "
        "--fisher {input.fisher} -o {output.limits} --plot-dir {output.plots} "
        "--config '{params.config}' --threads {threads} --memory-mb {resources.mem_mb} 2> {log}"


rule all_limits:
    input:
        rules.compute_limits.output,
