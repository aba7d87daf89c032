# The statistical model of the analysis: one fit per model spec listed in
# config["model"]["specs"] (name -> spec YAML). `eftflow fit-model` runs the Asimov closure
# gate, the fit, MINOS, profiles, contours, pulls and impacts, and writes plots.


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
        "eftflow -v fit-model {input.spec} -o {output} 2> {log}"


rule all_model:
    input:
        [f"{RESULTS}/fit_model/{name}" for name in config["model"]["specs"]],
