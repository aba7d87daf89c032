# Stages: detector simulation (particle store -> object store) and analysis (object store -> event
# store). Paths: results/shower_events/{sample}/{job}.zarr -> results/simulate_detector/{sample}/{job}.zarr
# -> results/analyse_events/{sample}/{job}.zarr. The (sample, job) list comes from
# `generation_jobs()` (common.smk).


rule simulate_detector:
    input:
        events=f"{RESULTS}/shower_events/{{sample}}/{{job}}.zarr",
        setup=f"{RESULTS}/setup/setup.h5",
    output:
        directory(f"{RESULTS}/simulate_detector/{{sample}}/{{job}}.zarr"),
    log:
        f"{LOGS}/simulate_detector/{{sample}}/{{job}}.log",
    benchmark:
        f"{BENCH}/simulate_detector/{{sample}}/{{job}}.tsv"
    conda:
        ENV
    threads: 4
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        config=lambda wc: stage_config("detector"),
        sampling=lambda wc: sampling_option(wc.sample),
    shell:
        "eftflow -v simulate-detector {input.events} --setup {input.setup} -o {output} {params.sampling} "
        "--config '{params.config}' --threads {threads} --memory-mb {resources.mem_mb} 2> {log}"


rule analyse_events:
    input:
        objects=f"{RESULTS}/simulate_detector/{{sample}}/{{job}}.zarr",
        setup=f"{RESULTS}/setup/setup.h5",
    output:
        directory(f"{RESULTS}/analyse_events/{{sample}}/{{job}}.zarr"),
    log:
        f"{LOGS}/analyse_events/{{sample}}/{{job}}.log",
    benchmark:
        f"{BENCH}/analyse_events/{{sample}}/{{job}}.tsv"
    conda:
        ENV
    threads: 4
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        config=lambda wc: stage_config("analysis"),
    shell:
        "eftflow -v analyse-events {input.objects} --setup {input.setup} -o {output} "
        "--config '{params.config}' --threads {threads} --memory-mb {resources.mem_mb} 2> {log}"


rule all_detector:
    input:
        [
            f"{RESULTS}/simulate_detector/{sample}/{job}.zarr"
            for sample, job in detector_jobs()
        ],


rule all_analyse:
    input:
        [
            f"{RESULTS}/analyse_events/{sample}/{job}.zarr"
            for sample, job in detector_jobs()
        ],
