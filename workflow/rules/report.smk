# Stage: the HTML report of the run (reads results only; sections register themselves in
# eftflow.report). Its inputs are the ends of the chain, so it runs last; the rules' benchmark
# files are read from the benchmark directory.


rule make_report:
    input:
        setup=f"{RESULTS}/setup/setup.h5",
        plot=f"{RESULTS}/setup/morphing_basis.png",
        events=f"{RESULTS}/combine_events/events.zarr",
        distributions=f"{RESULTS}/plot_distributions/distributions.png",
        fisher=f"{RESULTS}/compute_fisher_information/fisher_information.json",
        augmented=f"{RESULTS}/augment_samples",
        limits=f"{RESULTS}/compute_limits/limits.json",
        evaluation=f"{RESULTS}/evaluate_estimator/evaluation.json",
        models=inference_results(),
    output:
        f"{RESULTS}/report/report.html",
    log:
        f"{LOGS}/make_report/make_report.log",
    benchmark:
        f"{BENCH}/make_report/make_report.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        results=lambda wc, input: os.path.dirname(os.path.dirname(input.setup)),
        benchmarks=BENCH,
        config=lambda wc: config_json(config_without_cluster()),
    shell:
        "eftflow -v make-report --results {params.results} --benchmarks {params.benchmarks} "
        "--config '{params.config}' -o {output} 2> {log}"


rule all_report:
    input:
        rules.make_report.output,
