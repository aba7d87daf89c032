# The statistical model of the analysis, one per model spec listed in config["model"]["specs"]
# (name -> spec YAML). `eftflow build-model` validates the spec, builds the model, runs the
# Asimov closure gate and writes the model description; `eftflow infer` runs the fit, MINOS,
# profiles, contours, pulls, impacts, limits and toys on it. `eftflow fit-model` does both in
# one job (rule fit_model, target all_model).


rule build_model:
    input:
        spec=lambda wc: config["model"]["specs"][wc.name],
    output:
        directory(f"{RESULTS}/build_model/{{name}}"),
    log:
        f"{LOGS}/build_model/{{name}}.log",
    benchmark:
        f"{BENCH}/build_model/{{name}}.tsv"
    conda:
        ENV
    threads: 2
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
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "eftflow -v run-inference {input.model} -o {output} --threads {threads} 2> {log}"


rule all_inference:
    input:
        [f"{RESULTS}/run_inference/{name}" for name in config["model"]["specs"]],


rule fit_model:
    input:
        spec=lambda wc: config["model"]["specs"][wc.name],
    output:
        directory(f"{RESULTS}/fit_model/{{name}}"),
    log:
        f"{LOGS}/fit_model/{{name}}.log",
    benchmark:
        f"{BENCH}/fit_model/{{name}}.tsv"
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "eftflow -v fit-model {input.spec} -o {output} --threads {threads} 2> {log}"


rule all_model:
    input:
        [f"{RESULTS}/fit_model/{name}" for name in config["model"]["specs"]],
