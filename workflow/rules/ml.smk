# Stage: neural estimators (one job per ensemble member, or one Dask job for the ensemble)
# and their evaluation (detector-level Fisher information, likelihood-ratio maps);
# train_ratio_ensemble: the parameterised ratio ensemble of the workflow's own statistical model
# (config model.demo.estimator over `training`/`ensemble`; see model.smk); train_nuisance_shapes:
# its up/down networks of the scale/pdf nuisance parameters' shapes (model.demo.nuisance_shapes).
# The ensembles are `update(directory(...))` outputs: Snakemake would otherwise delete the
# previous ensemble before the job starts; with `update` it keeps it (a backup under .snakemake/)
# and restores it when the job fails, and eftflow replaces it atomically when the job succeeds.


rule train_estimator:
    input:
        samples=f"{RESULTS}/augment_samples",
        setup=f"{RESULTS}/setup/setup.h5",
    output:
        model=f"{RESULTS}/train_estimator/member_{{member}}.pt",
        spec=f"{RESULTS}/train_estimator/member_{{member}}.json",
    log:
        f"{LOGS}/train_estimator/member_{{member}}.log",
    benchmark:
        f"{BENCH}/train_estimator/member_{{member}}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=120,
    params:
        config=lambda wc: training_config(),
        trainset=lambda wc, input: f"{input.samples}/{config['training']['training_set']}.zarr",
    shell:
        "eftflow -v train-estimator {params.trainset} -o {output.model} "
        "--member {wildcards.member} --setup {input.setup} "
        "--config '{params.config}' --threads {threads} --memory-mb {resources.mem_mb} 2> {log}"


rule train_ensemble:
    input:
        samples=f"{RESULTS}/augment_samples",
        setup=f"{RESULTS}/setup/setup.h5",
    output:
        update(directory(f"{RESULTS}/train_ensemble")),
    log:
        f"{LOGS}/train_ensemble/train_ensemble.log",
    benchmark:
        f"{BENCH}/train_ensemble/train_ensemble.tsv"
    conda:
        ENV
    threads: 4
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        config=lambda wc: training_config(),
        trainset=lambda wc, input: f"{input.samples}/{config['training']['training_set']}.zarr",
    shell:
        "eftflow -v train-ensemble {params.trainset} -o {output} "
        "--setup {input.setup} "
        "--config '{params.config}' --threads {threads} --memory-mb {resources.mem_mb} 2> {log}"


rule train_ratio_ensemble:
    input:
        samples=f"{RESULTS}/augment_samples",
        setup=f"{RESULTS}/setup/setup.h5",
    output:
        update(directory(f"{RESULTS}/train_ratio_ensemble")),
    log:
        f"{LOGS}/train_ratio_ensemble/train_ratio_ensemble.log",
    benchmark:
        f"{BENCH}/train_ratio_ensemble/train_ratio_ensemble.tsv"
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        config=lambda wc: ratio_training_config(),
        trainset=lambda wc, input: f"{input.samples}/{DEMO['estimator']['training_set']}.zarr",
    shell:
        "eftflow -v train-ratio-ensemble {params.trainset} -o {output} "
        "--setup {input.setup} "
        "--config '{params.config}' --threads {threads} --memory-mb {resources.mem_mb} 2> {log}"


rule train_nuisance_shapes:
    input:
        events=f"{RESULTS}/combine_events/events.zarr",
        setup=f"{RESULTS}/setup/setup.h5",
    output:
        update(directory(f"{RESULTS}/train_nuisance_shapes")),
    log:
        f"{LOGS}/train_nuisance_shapes/train_nuisance_shapes.log",
    benchmark:
        f"{BENCH}/train_nuisance_shapes/train_nuisance_shapes.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        config=lambda wc: config_json({"seed": config["seed"], "model": {"demo": DEMO}}),
        plot=lambda wc: observables_arguments("--plot-observables"),
    shell:
        "eftflow -v train-nuisance-shapes {input.events} --setup {input.setup} -o {output} "
        "{params.plot} --config '{params.config}' --threads {threads} "
        "--memory-mb {resources.mem_mb} 2> {log}"


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
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        config=lambda wc: training_config("evaluation"),
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
            member=range(config["ensemble"]["n_members"]),
        ),


rule all_evaluate:
    input:
        rules.evaluate_estimator.output,
