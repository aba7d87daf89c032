# Stages: event generation (one job per sample x job index; a SLURM job array on clusters) and
# the Pythia 8 shower. Parton-level backends (builtin, madgraph) write LHE; the toy backend writes
# an event store with observables directly (no shower, detector or analysis).


wildcard_constraints:
    sample="[A-Za-z0-9_.+-]+",
    job=r"\d+",


if GEN_BACKEND == "toy":

    rule generate_events:
        input:
            setup=f"{RESULTS}/setup/setup.h5",
        output:
            directory(f"{RESULTS}/generate_events/{{sample}}/{{job}}.zarr"),
        log:
            f"{LOGS}/generate_events/{{sample}}/{{job}}.log",
        benchmark:
            f"{BENCH}/generate_events/{{sample}}/{{job}}.tsv"
        retries: RULE_RETRIES
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=2000,
            runtime=60,
            attempt=lambda wc, attempt: attempt,
        params:
            config=lambda wc: stage_config("generation"),
            retries=GEN_RETRIES,
        shell:
            "eftflow -v generate-events --setup {input.setup} --sample {wildcards.sample} "
            "--job {wildcards.job} --config '{params.config}' -o {output} "
            "--attempt {resources.attempt} --retries {params.retries} 2> {log}"

else:

    rule generate_events:
        input:
            setup=f"{RESULTS}/setup/setup.h5",
        output:
            f"{RESULTS}/generate_events/{{sample}}/{{job}}.lhe.gz",
        log:
            f"{LOGS}/generate_events/{{sample}}/{{job}}.log",
        benchmark:
            f"{BENCH}/generate_events/{{sample}}/{{job}}.tsv"
        retries: RULE_RETRIES
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=2000,
            runtime=120,
            attempt=lambda wc, attempt: attempt,
        params:
            config=lambda wc: stage_config("generation"),
            retries=GEN_RETRIES,
        shell:
            "eftflow -v generate-events --setup {input.setup} --sample {wildcards.sample} "
            "--job {wildcards.job} --config '{params.config}' -o {output} "
            "--attempt {resources.attempt} --retries {params.retries} 2> {log}"

    rule shower_events:
        input:
            lhe=f"{RESULTS}/generate_events/{{sample}}/{{job}}.lhe.gz",
            setup=f"{RESULTS}/setup/setup.h5",
        output:
            directory(f"{RESULTS}/shower_events/{{sample}}/{{job}}.zarr"),
        log:
            f"{LOGS}/shower_events/{{sample}}/{{job}}.log",
        benchmark:
            f"{BENCH}/shower_events/{{sample}}/{{job}}.tsv"
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=2000,
            runtime=120,
        params:
            config=lambda wc: stage_config("shower"),
            seed=config["seed"],
        shell:
            "eftflow -v shower-events {input.lhe} --setup {input.setup} -o {output} "
            "--config '{params.config}' --global-seed {params.seed} "
            "--sample {wildcards.sample} --job {wildcards.job} 2> {log}"


rule all_generate:
    input:
        generated_outputs(),


rule all_shower:
    input:
        [
            f"{RESULTS}/shower_events/{sample}/{job}.zarr"
            for sample, job in generation_jobs()
            if GEN_BACKEND != "toy"
        ],
