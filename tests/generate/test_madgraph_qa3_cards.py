"""MadGraph cards, systematics and failure detection checked against MadMiner's own writers."""

from __future__ import annotations

import gzip
import json
import re
import sys
from pathlib import Path

import pytest

from eftflow.errors import BackendError, ConfigError
from eftflow.generate.madgraph import MadGraphGenerator
from eftflow.generate.madgraph_cards import (
    param_card_entries,
    reweight_card,
    scan_log,
    set_param_card,
    systematics_arguments,
)
from eftflow.physics.parameters import Systematic
from eftflow.setup import EFTSetup

madminer = pytest.importorskip("madminer")  # at collection: its imports warn (uproot3)
from madminer.models import Systematic as MMSyst  # noqa: E402
from madminer.models import SystematicScale, SystematicType  # noqa: E402
from madminer.utils.interfaces.mg_cards import (  # noqa: E402
    create_systematics_arguments,
    export_param_card,
    export_reweight_card,
)

sys.path.insert(0, str(Path(__file__).parent / "fake_mg5"))
from harness import eft_setup, install_fake_mg5, mg_job  # noqa: E402

TEMPLATE = Path(__file__).parent / "fake_mg5" / "models" / "eft_ee" / "param_card.dat"
PARAMS = [
    ("DIM6", 2, "c1", "16.52*theta", (-1.0, 1.0)),
    ("decay", 23, "wz", "2.44*(1+theta)", (-0.1, 0.1)),
    ("dim6", 3, "c2", None, (-1.0, 1.0)),
]
BENCHMARKS = {
    "sm": {"c1": 0.0, "wz": 0.0, "c2": 0.0},
    "b1": {"c1": 0.123456789123, "wz": 0.05, "c2": 0.3333333333333333},
    "b2": {"c1": -1e-9, "wz": -0.05, "c2": 7.25e-4},
}


def _both_setups():
    mm, ours = madminer.MadMiner(), EFTSetup()
    for block, pid, name, transform, rng in PARAMS:
        mm.add_parameter(block, pid, name, transform or "theta", 2, rng)
        ours.add_parameter(block, pid, name, transform, 2, rng)
    for name, values in BENCHMARKS.items():
        mm.add_benchmark(values, name)
        ours.add_benchmark(values, name)
    return mm, ours


def _card_values(setup, bench):
    b = setup.benchmarks[bench]
    return {
        (p.lha_block, p.lha_id): p.card_value(b.values[p.name]) for p in setup.parameters.values()
    }


@pytest.mark.parametrize("bench", list(BENCHMARKS))
def test_param_card_values_equal_madminers(tmp_path, bench):
    """Every entry MadMiner's export_param_card writes, to the last digit (transforms applied)."""
    mm, ours = _both_setups()
    export_param_card(
        mm.benchmarks[bench], mm.parameters, str(TEMPLATE), str(tmp_path), str(tmp_path / "mm.dat")
    )
    theirs = param_card_entries((tmp_path / "mm.dat").read_text())
    text = set_param_card(TEMPLATE.read_text(), _card_values(ours, bench))
    mine = param_card_entries(text)
    assert set(mine) == set(theirs)
    for key in mine:
        assert float(mine[key]) == float(theirs[key]), key
    # MadGraph's layout is kept: one line per entry, %e style, comments untouched
    assert len(text.splitlines()) == len(TEMPLATE.read_text().splitlines())
    assert "      1 1.000000e+03 # lambda \n" in text


def test_reweight_card_sets_what_madminer_sets(tmp_path):
    """Same `set block id value` per benchmark as export_reweight_card, in benchmark order."""
    mm, ours = _both_setups()
    export_reweight_card(
        "sm", mm.benchmarks, mm.parameters, str(tmp_path), str(tmp_path / "rw.dat")
    )
    theirs, current = {}, None
    for line in (tmp_path / "rw.dat").read_text().splitlines():
        if line.startswith("launch --rwgt_name="):
            current = line.split("=", 1)[1]
            theirs[current] = []
        elif line.strip().startswith("set ") and current:
            _, block, pid, value = line.split()
            theirs[current].append((block.lower(), int(pid), float(value)))
    text = reweight_card(
        [
            (
                b.name,
                [
                    (p.lha_block.lower(), p.lha_id, p.card_value(b.values[p.name]))
                    for p in ours.parameters.values()
                ],
            )
            for b in ours.physics_benchmarks()
        ]
    )
    lines = text.splitlines()
    assert lines[:2] == ["change helicity False", "change mode LO"]
    launches = [ln.split("=", 1)[1] for ln in lines if ln.startswith("launch")]
    assert launches == list(BENCHMARKS)  # every benchmark, the sampling one too, in order
    mine, current = {}, None
    for line in lines[2:]:
        if line.startswith("launch"):
            current = line.split("=", 1)[1]
            mine[current] = []
        else:
            _, block, pid, value = line.split()
            mine[current].append((block, int(pid), float(value)))
    for name, sets in theirs.items():  # MadMiner leaves out the sampling benchmark
        assert mine[name] == sets


@pytest.mark.parametrize(
    "systs",
    [
        [("scale", "mu", "0.5,1.0,2.0")],
        [("scale", "mur", "0.5,2.0"), ("scale", "muf", "0.25,4.0")],
        [("pdf", None, "CT10")],
        [("scale", "mu", "0.5,1.0,2.0"), ("pdf", None, "NNPDF23_lo_as_0130_qed")],
        [("norm", None, "1.1")],
    ],
)
def test_systematics_arguments_equal_madminers(systs):
    ours, theirs = [], {}
    for i, (kind, scale, value) in enumerate(systs):
        ours.append(Systematic(f"s{i}", kind, value, scale))
        theirs[f"s{i}"] = MMSyst(
            f"s{i}",
            SystematicType.from_str(kind),
            value,
            SystematicScale.from_str(scale) if scale else None,
        )
    assert systematics_arguments(ours) == create_systematics_arguments(theirs)


def test_systematics_arguments_refuse_two_variations_of_one_scale():
    with pytest.raises(ConfigError, match="both vary mur") as err:
        systematics_arguments(
            [Systematic("a", "scale", "0.5,2.0", "mu"), Systematic("b", "scale", "0.5", "mur")]
        )
    assert err.value.field == "systematics.b"


def test_scan_log_madevent_error_formats():
    """MadEvent's own failure block ('Error detected in', ZeroResult) counts as a failure."""
    log = "\n".join(
        [
            "INFO: Using random number seed offset = 6132039411",
            'Error detected in "generate_events run_01"',
            "write debug file /x/proc/run_01_tag_1_debug.log ",
            "If you need help with this issue please contact us on https://answers.launchpad.net/mg5amcnlo",
        ]
    )
    failed, quote = scan_log(log)
    assert failed and quote[0] == 'Error detected in "generate_events run_01"'
    assert scan_log("ZeroResult : Survey return zero cross section.")[0]
    assert scan_log("SysCalcException: no pdf")[0]
    assert not scan_log('INFO: "OFF" not valid option\nINFO: Done')[0]


def _run_dir(tmp_path):
    work = tmp_path / "work"
    (work / "Events" / "run_x").mkdir(parents=True)
    lhe = work / "Events" / "run_x" / "unweighted_events.lhe.gz"
    with gzip.open(lhe, "wt") as fh:
        fh.write("<LesHouchesEvents>\n</LesHouchesEvents>\n")
    log = tmp_path / "out.lhe.gz.log"
    log.write_text("INFO: Running Survey\nINFO: Done\n")
    return work, lhe, log


def test_check_finds_madevent_debug_file_in_process_dir(tmp_path):
    """MadEvent writes <run>_<tag>_debug.log in the process directory, not in Events/<run>/."""
    work, lhe, log = _run_dir(tmp_path)
    MadGraphGenerator._check(log, work, lhe, "run_x")  # clean run passes
    (work / "run_x_tag_1_debug.log").write_text("Traceback ...\nInvalidCmd : bad card\n")
    with pytest.raises(BackendError) as err:
        MadGraphGenerator._check(log, work, lhe, "run_x")
    msg = str(err.value)
    assert "run_x_tag_1_debug.log" in msg and "InvalidCmd : bad card" in msg
    assert err.value.file == str(log) and f"full log: {log}" in msg


def test_check_systematics_skipped_without_lhapdf(tmp_path):
    work, lhe, log = _run_dir(tmp_path)
    log.write_text(
        "INFO: Running Systematics computation\n"
        "WARNING: No version of lhapdf. Can not run systematics computation\nINFO: Done\n"
    )
    MadGraphGenerator._check(log, work, lhe, "run_x")  # not asked for: fine
    with pytest.raises(BackendError, match="skipped its systematics module") as err:
        MadGraphGenerator._check(log, work, lhe, "run_x", systematics=True)
    assert "Can not run systematics computation" in str(err.value) and err.value.file == str(log)


@pytest.fixture
def mg(tmp_path):
    return install_fake_mg5(tmp_path / "MG5_aMC_v3_5_7")


def test_setup_scale_systematics_reach_the_run_card(tmp_path, mg, monkeypatch):
    monkeypatch.setenv("FAKE_MG5_LHAPDF", "1")  # the fake's systematics module runs
    setup = eft_setup(1)
    setup.add_systematics("scale", "mu_var", scale="mu", scale_variations=(0.5, 1.0, 2.0))
    setup.add_systematics("norm", "lumi", norm_variation=1.02)
    res = MadGraphGenerator().generate(mg_job(tmp_path, mg, setup, n_events=50))  # use_syst None
    with gzip.open(res.output, "rt") as fh:
        header = fh.read().split("</MGRunCard>")[0]
    want = "['--mur=0.5,1.0,2.0', '--muf=0.5,1.0,2.0', '--together=mur,muf', '--dyn=-1']"
    assert f"{want} = systematics_arguments" in header
    assert re.search(r"^\s*True\s+= use_syst", header, re.M)
    assert "systematics = systematics_program" in header
    meta = json.loads(Path(str(res.output) + ".json").read_text())
    assert meta["systematics_arguments"] == want
    assert meta["run_card_settings"]["use_syst"] is True
    # use_syst: false wins (with a warning): no systematics module, no arguments
    job = mg_job(tmp_path, mg, setup, n_events=50, job=1, use_syst=False)
    res = MadGraphGenerator().generate(job)
    with gzip.open(res.output, "rt") as fh:
        header = fh.read().split("</MGRunCard>")[0]
    assert re.search(r"^\s*False\s+= use_syst", header, re.M)
    assert "systematics_arguments" not in header


@pytest.mark.parametrize("seed", [0, -3, 30081 * 30081])
def test_invalid_iseed_is_refused_before_running(tmp_path, mg, seed):
    """iseed 0 lets MadGraph choose (not reproducible); above 30081² MadEvent refuses it."""
    job = mg_job(tmp_path, mg, eft_setup(1), seed=seed)
    with pytest.raises(ConfigError, match="not a valid MadGraph iseed") as err:
        MadGraphGenerator().generate(job)
    assert err.value.field == "seed"
    assert not Path(job.output).exists() and not (tmp_path / "mg_cache").exists()
