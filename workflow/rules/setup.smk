# Stage 1: parameters, benchmarks, morphing basis -> setup.h5 (MadMiner layout) + basis plots.


rule setup:
    output:
        setup=f"{RESULTS}/setup/setup.h5",
        plot=f"{RESULTS}/setup/morphing_basis.png",
    log:
        f"{LOGS}/setup/setup.log",
    benchmark:
        f"{BENCH}/setup/setup.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        config=lambda wc: stage_config(
            "parameters", "benchmarks", "morphing", "finite_differences", "systematics"
        ),
    shell:
        "eftflow -v setup --config '{params.config}' -o {output.setup} "
        "--plot {output.plot} 2> {log}"


rule all_setup:
    input:
        rules.setup.output,
