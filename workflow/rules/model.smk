# The statistical models of the analysis, one per entry of `model_specs()` (common.smk): the
# user's specs in config["model"]["specs"] (name -> spec YAML) and, with model.demo.enabled, the
# workflow's own model, whose spec `eftflow write-model-spec` writes from the run's outputs (the
# combined store's test events, the ratio ensemble of train_ratio_ensemble, the setup's
# morphing, the systematics' rate effects and the up/down networks of train_nuisance_shapes).
# `eftflow build-model` validates a spec, builds the model, runs the Asimov closure gate and
# writes the model description; `eftflow infer` runs the fit, MINOS, profiles, contours, pulls,
# impacts, limits and toys on it. `eftflow fit-model` does both in one job (rule fit_model,
# target all_model).


rule write_model_spec:
    input:
        unpack(nuisance_shapes_input),
        events=f"{RESULTS}/combine_events/events.zarr",
        setup=f"{RESULTS}/setup/setup.h5",
        ensemble=rules.train_ratio_ensemble.output,
    output:
        f"{RESULTS}/write_model_spec/{DEMO['name']}.yaml",
    log:
        f"{LOGS}/write_model_spec/{DEMO['name']}.log",
    benchmark:
        f"{BENCH}/write_model_spec/{DEMO['name']}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        config=lambda wc: config_json({"model": {"demo": DEMO}}),
        shapes=lambda wc, input: (
            f"--nuisance-shapes {input.shapes}" if "shapes" in input.keys() else ""
        ),
    shell:
        "eftflow -v write-model-spec --store {input.events} --setup {input.setup} "
        "--ensemble {input.ensemble} {params.shapes} --config '{params.config}' "
        "-o {output} 2> {log}"


rule build_model:
    input:
        spec=lambda wc: model_specs()[wc.name],
    output:
        directory(f"{RESULTS}/build_model/{{name}}"),
    log:
        f"{LOGS}/build_model/{{name}}.log",
    benchmark:
        f"{BENCH}/build_model/{{name}}.tsv"
    conda:
        ENV
    threads: model_threads
    resources:
        mem_mb=8000,
        runtime=30,
    shell:
        "eftflow -v build-model {input.spec} -o {output} --threads {threads} 2> {log}"


rule run_inference:
    input:
        model=rules.build_model.output,
    output:
        directory(f"{RESULTS}/run_inference/{{name}}"),
    log:
        f"{LOGS}/run_inference/{{name}}.log",
    benchmark:
        f"{BENCH}/run_inference/{{name}}.tsv"
    conda:
        ENV
    threads: model_threads
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "eftflow -v run-inference {input.model} -o {output} --threads {threads} 2> {log}"


rule all_inference:
    input:
        inference_results(),


rule fit_model:
    input:
        spec=lambda wc: model_specs()[wc.name],
    output:
        directory(f"{RESULTS}/fit_model/{{name}}"),
    log:
        f"{LOGS}/fit_model/{{name}}.log",
    benchmark:
        f"{BENCH}/fit_model/{{name}}.tsv"
    conda:
        ENV
    threads: model_threads
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "eftflow -v fit-model {input.spec} -o {output} --threads {threads} 2> {log}"


rule all_model:
    input:
        [f"{RESULTS}/fit_model/{name}" for name in model_specs()],
