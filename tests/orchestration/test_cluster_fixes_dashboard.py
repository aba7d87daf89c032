"""The ``Dask dashboard:`` line: the node's name when listening everywhere, free port, logged once."""

from __future__ import annotations

import logging
import socket
from urllib.parse import urlsplit
from urllib.request import urlopen

import dask
import distributed  # noqa: F401  (loads the distributed.* config the test compares)
import pytest

from eftflow.cluster import ClusterReport, dask_client
from eftflow.cluster.base import listens_everywhere
from eftflow.cluster.session import dashboard_host

NODE = socket.gethostname()


def _expected_host(ip: str) -> str:
    """The node's name, or the address when the node has no usable name."""
    return ip if not NODE or NODE.split(".")[0] == "localhost" else NODE


def _square(x):
    return x * x


def _dashboard_records(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("Dask dashboard:")]


def test_link_names_the_node_and_is_logged_once(caplog):
    caplog.set_level(logging.INFO)
    template = dask.config.get("distributed.dashboard.link", None)
    report = ClusterReport()
    cfg = {"mode": "local", "dashboard_address": ":0", "local": {"processes": False}}
    with dask_client(cfg, threads=2, report=report) as client:
        link = urlsplit(report.dashboard_link)
        assert link.hostname == _expected_host("127.0.0.1")
        assert link.hostname not in ("127.0.0.1", "0.0.0.0") or NODE.startswith("localhost")
        assert client.dashboard_link == report.dashboard_link  # what the stages log, too
        for _ in range(3):  # several rounds of work in one step: still one line
            assert sum(client.gather(client.map(_square, range(5), pure=False))) == 30
        # listening on all interfaces: reachable on loopback as well as on the node's address
        with urlopen(f"http://127.0.0.1:{link.port}/status", timeout=30) as r:
            assert r.status == 200
    assert _dashboard_records(caplog) == [f"Dask dashboard: {report.dashboard_link}"]
    assert dask.config.get("distributed.dashboard.link", None) == template  # restored


def test_explicit_host_is_kept(caplog):
    caplog.set_level(logging.INFO)
    report = ClusterReport()
    cfg = {"mode": "local", "dashboard_address": "127.0.0.1:0", "local": {"processes": False}}
    with dask_client(cfg, threads=2, report=report):
        pass
    assert urlsplit(report.dashboard_link).hostname == "127.0.0.1"
    assert len(_dashboard_records(caplog)) == 1


@pytest.mark.parametrize(
    ("address", "everywhere"),
    [
        (":8787", True),
        ("8787", True),
        (":0", True),
        ("0.0.0.0:8787", True),
        ("[::]:8787", True),
        ("127.0.0.1:0", False),
        ("node042:8787", False),
        (None, False),
    ],
)
def test_listens_everywhere(address, everywhere):
    assert listens_everywhere(address) is everywhere


class _FakeClient:
    def __init__(self, answer):
        self.answer = answer
        self.asked = 0

    def run_on_scheduler(self, function):
        self.asked += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.mark.parametrize(
    ("address", "answer", "expected"),
    [
        (":8787", "node042", "node042"),
        ("0.0.0.0:8787", "node042.cluster", "node042.cluster"),
        (":8787", OSError("scheduler gone"), None),  # no name: keep distributed's IP
        (":8787", "", None),
        (":8787", "localhost", None),
        ("10.1.2.3:8787", "node042", "10.1.2.3"),  # listens there only
        ("127.0.0.1:0", "node042", "127.0.0.1"),
    ],
)
def test_dashboard_host(address, answer, expected):
    client = _FakeClient(answer)
    assert dashboard_host(client, address) == expected
    assert client.asked == (1 if listens_everywhere(address) else 0)


def test_slurm_cluster_takes_a_free_port_and_names_the_node(tmp_path, monkeypatch, caplog):
    """The scheduler of mode slurm-cluster runs here: a taken port falls back without a warning.

    No worker job is submitted (adaptive minimum 0, no task), so SLURM is not needed: ``sbatch``
    is only looked for and ``sbatch --test-only`` is skipped.
    """
    import eftflow.cluster.slurm_cluster as sc

    calls = []

    def spy(address):
        calls.append((address, sc_free(address)))
        return calls[-1][1]

    sc_free = sc.free_dashboard_address
    monkeypatch.setattr(sc, "free_dashboard_address", spy)
    monkeypatch.setattr(sc.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(sc, "check_submission", lambda script: None)
    caplog.set_level(logging.INFO)
    cfg = {
        "mode": "slurm-cluster",
        "startup_timeout": 30,
        "slurm": {
            "walltime": "00:10:00",
            "log_directory": str(tmp_path / "logs"),
            "adaptive": {"minimum": 0, "maximum": 1},
        },
    }
    report = ClusterReport()
    with socket.socket() as holder:  # another job's dashboard holds the port
        holder.bind(("", 0))
        holder.listen()
        port = holder.getsockname()[1]
        cfg["dashboard_address"] = f":{port}"
        # pytest turns distributed's "Port ... is already in use" warning into an error
        with dask_client(cfg, report=report) as client:
            scheduler_ip = urlsplit(client.scheduler.address).hostname
    assert calls == [(f":{port}", ":0")]
    link = urlsplit(report.dashboard_link)
    assert link.port != port
    assert link.hostname == _expected_host(scheduler_ip)
    assert len(_dashboard_records(caplog)) == 1
