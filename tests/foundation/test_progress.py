"""Progress display: log lines in batch jobs, a bar on a terminal, nothing when switched off."""

from __future__ import annotations

import logging

import pytest

from eftflow.progress import Progress, format_duration, progress


def test_log_mode_writes_count_percent_rate_and_time_left(caplog):
    caplog.set_level(logging.INFO, logger="t")
    with Progress(
        4, "stage", unit="events", logger=logging.getLogger("t"), every=0, mode="log"
    ) as p:
        p.update(2)
        p.update(2)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3  # two updates and the closing line
    assert lines[0].startswith("stage: 2/4 events (50 %), ") and "events/s" in lines[0]
    assert "left" in lines[0]
    assert lines[-1].startswith("stage: 4/4 events (100 %)") and "left" not in lines[-1]


def test_log_mode_is_quiet_for_short_steps(caplog):
    caplog.set_level(logging.INFO, logger="t")
    with Progress(10, "stage", logger=logging.getLogger("t"), every=60, mode="log") as p:
        for _ in range(10):
            p.update()
    assert p.n == 10 and caplog.records == []


def test_unknown_total_counts_without_percent():
    p = Progress(None, "read", unit="chunks", mode="log")
    p.update(3)
    assert p.line().startswith("read: 3 chunks, ") and "%" not in p.line()


def test_bar_mode_draws_on_stderr_and_off_mode_is_silent(capsys, monkeypatch, caplog):
    with Progress(5, "demo", unit="chunks", mode="bar") as p:
        p.update(5)
    assert "demo" in capsys.readouterr().err
    monkeypatch.setenv("EFTFLOW_PROGRESS", "off")
    caplog.set_level(logging.DEBUG)
    with progress(5, "quiet", every=0) as p:
        p.update(5)
    assert p.mode == "off" and capsys.readouterr().err == "" and caplog.records == []


@pytest.mark.parametrize("value, mode", [("log", "log"), ("bar", "bar"), ("nonsense", "log")])
def test_environment_chooses_the_mode(monkeypatch, value, mode):
    # pytest captures stderr: not a terminal, so anything but bar/log/off means log
    monkeypatch.setenv("EFTFLOW_PROGRESS", value)
    p = progress(1, "x")
    p.close()
    assert p.mode == mode


@pytest.mark.parametrize(
    "seconds, text", [(0.4, "0 s"), (45, "45 s"), (192, "3 min 12 s"), (7500, "2 h 05 min")]
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
