# Global scans (GAMBIT-style): one job per scan file listed in config["scan"]["files"]
# (name -> scan file), written to results/[<run_name>/]scan/<name>/. With `scan.tasks` > 1 the
# job runs `<scan.mpi> -n <tasks> eftflow run-scan ...` (on SLURM: `srun --mpi=pmi2`, one job
# with that many tasks); `eftflow run-scan` (= `eftflow scan`) uses all ranks it is started with.
# The declared output is the scan's `summary.json`, written when the scan is complete: a job
# killed by a time limit leaves its checkpoint (Snakemake only removes declared outputs), and
# rerunning the rule continues it (`--resume-if-possible`; a changed scan file starts afresh).


rule run_scan:
    input:
        scanfile=lambda wc: scan_files()[wc.name],
    output:
        f"{RESULTS}/scan/{{name}}/summary.json",
    log:
        f"{LOGS}/scan/{{name}}.log",
    benchmark:
        f"{BENCH}/scan/{{name}}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        **SCAN_MPI,
        mem_mb=4000,
        runtime=60,
    params:
        outdir=lambda wc, output: os.path.dirname(output[0]),
        launcher=SCAN_LAUNCHER,
    shell:
        "{params.launcher}eftflow -v run-scan {input.scanfile} -o {params.outdir} "
        "--resume-if-possible --plots 2> {log}"


rule all_scan:
    input:
        expand(f"{RESULTS}/scan/{{name}}/summary.json", name=list(scan_files())),
