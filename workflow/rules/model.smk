# The statistical model of the analysis: one fit per model spec listed in
# config["model"]["specs"] (name -> spec YAML). `eftflow fit-model` runs the Asimov closure
# gate, the fit, MINOS, profiles, contours, pulls and impacts, and writes plots.


rule fit_model:
    input:
        spec=lambda wc: config["model"]["specs"][wc.name],
    output:
        directory("results/fit_model/{name}"),
    log:
        "logs/fit_model/{name}.log",
    benchmark:
        "benchmarks/fit_model/{name}.tsv"
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
        expand(
            "results/fit_model/{name}",
            name=list(config.get("model", {}).get("specs", {})),
        ),
