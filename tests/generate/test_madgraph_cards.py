"""MadGraph card writing, log scanning, and the fake MG5's LHE format against real MadGraph files."""

from __future__ import annotations

import gzip
import re
import sys
from pathlib import Path

import pytest

from eftflow.errors import BackendError, ConfigError
from eftflow.generate.madgraph_cards import (
    param_card_entries,
    proc_card,
    read_mg_version,
    reweight_card,
    scan_log,
    set_param_card,
    set_run_card,
)

sys.path.insert(0, str(Path(__file__).parent / "fake_mg5"))
import fake_core  # noqa: E402

FAKE = Path(__file__).parent / "fake_mg5"
MG_FILE = Path(__file__).parent / "data" / "madgraph-3.5.8-pp_to_jj-40events.lhe.gz"
SM_CARD = (FAKE / "models" / "sm" / "param_card.dat").read_text()


def test_proc_card():
    text = proc_card("SMEFTatNLO-LO", ["e+ e- > mu+ mu- NP<=2", "e+ e- > e+ e-"], "proc")
    assert text == (
        "import model SMEFTatNLO-LO\ngenerate e+ e- > mu+ mu- NP<=2\n"
        "add process e+ e- > e+ e-\noutput proc\n"
    )
    with pytest.raises(ConfigError, match="forbidden character"):
        proc_card("sm", "e+ e- > mu+ mu-\nshell rm -rf x", "proc")
    with pytest.raises(ConfigError, match="one word"):
        proc_card("sm x", "e+ e- > mu+ mu-", "proc")


def test_run_card_in_place_and_appended():
    text = fake_core.RUN_CARD
    out = set_run_card(text, {"nevents": 250, "iseed": 12, "use_syst": False, "mmll": 50.0})
    rc = fake_core.parse_run_card(out)
    assert rc["nevents"] == "250" and rc["iseed"] == "12" and rc["use_syst"] == "False"
    assert rc["mmll"] == "50.0" and rc["event_norm"] == "average"
    assert "  250 = nevents ! Number of unweighted events requested\n" in out
    assert len(out.splitlines()) == len(text.splitlines()) + 1  # only mmll was appended


def test_param_card_set_and_missing_entry():
    out = set_param_card(SM_CARD, {("SMINPUTS", 1): 120.0, ("decay", 23): 3.0, ("mass", 23): 91.0})
    entries = param_card_entries(out)
    assert entries[("sminputs", 1)] == "1.200000e+02" and entries[("decay", 23)] == "3.000000e+00"
    assert "      1 1.200000e+02 # aewm1 \n" in out and "DECAY 23 3.000000e+00 # wz \n" in out
    assert len(out) == len(SM_CARD)  # layout kept
    with pytest.raises(ConfigError) as err:
        set_param_card(
            SM_CARD, {("dim6", 2): 1.0}, names={("dim6", 2): "cWWW"}, path="param_card.dat"
        )
    assert "parameter 'cWWW'" in str(err.value) and "BLOCK DIM6 entry 2" in str(err.value)
    assert err.value.file == "param_card.dat" and err.value.field == "parameters.cWWW.lha_block"


def test_reweight_card_options():
    sets = [("sm", [("dim6", 2, 0.0)]), ("c", [("dim6", 2, 1e-10)])]
    text = reweight_card(sets, change_helicity=True, mode=None)
    assert (
        text
        == "launch --rwgt_name=sm\n    set dim6 2 0.0\nlaunch --rwgt_name=c\n    set dim6 2 1e-10\n"
    )
    assert reweight_card(sets).startswith("change helicity False\nchange mode LO\n")
    with pytest.raises(ConfigError, match="cannot be a MadGraph weight id"):
        reweight_card([("a b", [])])


def test_scan_log():
    log = "\n".join(
        [
            "stty: 'standard input': Inappropriate ioctl for device",
            "INFO: Running Survey",
            'Command "generate_events run_01 -f" interrupted with error:',
            "KeyError : 'decay'",
            "Please report this bug on https://bugs.launchpad.net/mg5amcnlo",
            "More information is found in 'ME5_debug'.",
        ]
    )
    failed, lines = scan_log(log)
    assert failed
    assert lines == [
        'Command "generate_events run_01 -f" interrupted with error:',
        "KeyError : 'decay'",
    ]
    ok, tail = scan_log("INFO: Cross-section :   0.1044 +- 0.00026 pb\nINFO: Done\n")
    assert not ok and tail == ["INFO: Cross-section :   0.1044 +- 0.00026 pb", "INFO: Done"]


def test_read_mg_version(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "mg5_aMC").write_text("")
    with pytest.raises(BackendError, match="no VERSION file"):
        read_mg_version(tmp_path)
    for v, ok in (("3.5.7", True), ("3.6.3", True), ("3.4.2", False), ("3.50.1", False)):
        (tmp_path / "VERSION").write_text(f"version = {v}\ndate = 2024-11-29\n")
        if ok:
            assert read_mg_version(tmp_path) == v
        else:
            with pytest.raises(BackendError, match="not supported"):
                read_mg_version(tmp_path)
    with pytest.raises(BackendError, match="bin/mg5_aMC is missing"):
        read_mg_version(tmp_path / "bin")


def _event_lines(path: Path, n: int = 40):
    with gzip.open(path, "rt") as fh:
        text = fh.read()
    return re.findall(r"<event>\n(.*?)\n<(?:mgrwt|rwgt)>", text, re.S)[:n]


def test_fake_formats_match_madgraph_byte_for_byte():
    """The fake's event and particle line formats re-create a real MadGraph file exactly."""
    blocks = _event_lines(MG_FILE)
    assert len(blocks) == 40
    for block in blocks:
        head, *parts = block.split("\n")
        f = head.split()
        assert fake_core._fmt_event_head(int(f[0]), int(f[1]), *map(float, f[2:])) == head
        for line in parts:
            w = line.split()
            p = [*map(int, w[:6]), *map(float, w[6:])]
            assert fake_core._fmt_particle(p) == line
    # the example event of the MadGraph notes (e+ e- > mu+ mu-, MG 3.5.7)
    assert (
        fake_core._fmt_event_head(4, 1, 0.110311, 1000.0, 7.81859e-03, 8.705754e-02)
        == " 4      1 +1.1031100e-01 1.00000000e+03 7.81859000e-03 8.70575400e-02"
    )
    line = fake_core._fmt_particle(
        (13, 1, 1, 2, 0, 0, 231.02477005, 48.122324228, -440.80811873, 500.0, 0.0, 0.0, -1.0)
    )
    assert line == (
        "       13  1    1    2    0    0 +2.3102477005e+02 +4.8122324228e+01 -4.4080811873e+02 "
        "5.0000000000e+02 0.0000000000e+00 0.0000e+00 -1.0000e+00"
    )
