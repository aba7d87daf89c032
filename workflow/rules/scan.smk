# Global scans (GAMBIT-style): one job per scan file listed in config["scan"]["files"]
# (name -> scan file). MPI: run the job with an MPI launcher, e.g. a SLURM profile that starts
# `srun`/`mpiexec -n {resources.tasks}`; `eftflow run-scan` (= `eftflow scan`) uses all ranks it is started with.


rule run_scan:
    input:
        scanfile=lambda wc: scan_files()[wc.name],
    output:
        directory("results/scan/{name}"),
    log:
        "logs/scan/{name}.log",
    benchmark:
        "benchmarks/scan/{name}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "eftflow -v run-scan {input.scanfile} -o {output} --force --plots 2> {log}"


rule all_scan:
    input:
        expand("results/scan/{name}", name=list(scan_files())),
