# Stage: neural estimators (one job per ensemble member, or one Dask job for the ensemble)
# and their evaluation (detector-level Fisher information, likelihood-ratio maps).


def training_set(wildcards=None):
    return f"{RESULTS}/augment_samples"


def training_set_name():
    return config.get("training", {}).get("training_set", "train_local")


def n_members():
    return int(config.get("ensemble", {}).get("n_members", 5))


rule train_estimator:
    input:
        samples=training_set,
    output:
        model=f"{RESULTS}/train_estimator/member_{{member}}.pt",
        spec=f"{RESULTS}/train_estimator/member_{{member}}.json",
    log:
        f"{LOGS}/train_estimator/member_{{member}}.log",
    benchmark:
        f"{BENCH}/train_estimator/member_{{member}}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=120,
    params:
        config=lambda wc: stage_config("training", "ensemble"),
        trainset=lambda wc, input: f"{input.samples}/{training_set_name()}.zarr",
    shell:
        "eftflow -v train-estimator {params.trainset} -o {output.model} "
        "--member {wildcards.member} --setup {RESULTS}/setup/setup.h5 "
        "--config '{params.config}' --threads {threads} --memory-mb {resources.mem_mb} 2> {log}"


rule train_ensemble:
    input:
        samples=training_set,
    output:
        directory(f"{RESULTS}/train_ensemble"),
    log:
        f"{LOGS}/train_ensemble/train_ensemble.log",
    benchmark:
        f"{BENCH}/train_ensemble/train_ensemble.tsv"
    threads: 4
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        config=lambda wc: stage_config("training", "ensemble", "cluster"),
        trainset=lambda wc, input: f"{input.samples}/{training_set_name()}.zarr",
    shell:
        "eftflow -v train-ensemble {params.trainset} -o {output} "
        "--setup {RESULTS}/setup/setup.h5 "
        "--config '{params.config}' --threads {threads} --memory-mb {resources.mem_mb} 2> {log}"


rule evaluate_estimator:
    input:
        model=rules.train_ensemble.output,
        events=f"{RESULTS}/combine_events/events.zarr",
        setup=f"{RESULTS}/setup/setup.h5",
    output:
        info=f"{RESULTS}/evaluate_estimator/evaluation.json",
        plots=directory(f"{RESULTS}/evaluate_estimator/plots"),
    log:
        f"{LOGS}/evaluate_estimator/evaluate_estimator.log",
    benchmark:
        f"{BENCH}/evaluate_estimator/evaluate_estimator.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        config=lambda wc: stage_config("training", "ensemble", "evaluation"),
    shell:
        "eftflow -v evaluate-estimator {input.model} --store {input.events} "
        "--setup {input.setup} -o {output.info} --plot {output.plots} "
        "--config '{params.config}' --threads {threads} --memory-mb {resources.mem_mb} 2> {log}"


rule all_train:
    input:
        rules.train_ensemble.output,


rule all_train_members:
    input:
        expand(
            f"{RESULTS}/train_estimator/member_{{member}}.pt",
            member=range(n_members()),
        ),


rule all_evaluate:
    input:
        rules.evaluate_estimator.output,
