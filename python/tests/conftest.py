"""Fixtures: the real gpurm daemon on a free port with the 3-node demo inventory,
a manager talking to it, and isolation of environment and allocations.

The daemon binary is ``$GPURM_BIN``, else ``build/gpurm`` in the repository.
When it is missing, daemon-backed tests are skipped, unless
``GPURM_REQUIRE_DAEMON=1`` (scripts/test-python.sh sets it), which makes them fail.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator

import pytest

from helpers import REPO, free_port

INVENTORY = REPO / "examples" / "cluster-3node.yaml"
CONFIG = REPO / "gpu_config.yaml"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@dataclass
class Daemon:
    """A running ``gpurm serve``."""

    url: str
    process: "subprocess.Popen[bytes]"
    data_dir: Path
    log_dir: Path

    def get(self, path: str) -> Dict:
        with urllib.request.urlopen(self.url + "/api/v1/gpu" + path, timeout=10) as resp:
            return json.loads(resp.read())


def _binary() -> Path:
    return Path(os.environ.get("GPURM_BIN") or REPO / "build" / "gpurm")


@pytest.fixture(scope="session")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    binary = _binary()
    if not os.access(binary, os.X_OK):
        message = f"gpurm daemon binary {binary} not built (set GPURM_BIN or build it)"
        if os.environ.get("GPURM_REQUIRE_DAEMON") == "1":
            pytest.fail(message)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("gpurm-daemon")
    data_dir, log_dir = root / "data", root / "logs"
    data_dir.mkdir()
    log_dir.mkdir()
    port = free_port()
    stderr_path = root / "stderr.txt"
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            [str(binary), "serve", "--inventory", str(INVENTORY), "--listen", f"127.0.0.1:{port}",
             "--data-dir", str(data_dir), "--log-dir", str(log_dir), "--config", str(CONFIG)],
            stdout=stderr, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/api/v1/gpu/health", timeout=2) as resp:
                if resp.status == 200:
                    break
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            pytest.fail(f"gpurm serve did not become healthy (exit {process.returncode}):\n"
                        + stderr_path.read_text(errors="replace")[-4000:])
        time.sleep(0.1)
    yield Daemon(url, process, data_dir, log_dir)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail("gpurm serve did not stop within 15 s of SIGTERM")


@pytest.fixture
def manager(daemon: Daemon) -> Iterator["gpurm.GPUResourceManager"]:  # noqa: F821
    """A fresh manager for the daemon; every allocation left active is released afterwards."""
    import gpurm

    m = gpurm.GPUResourceManager(daemon.url)
    yield m
    for allocation in m.allocations:
        allocation.release()
    for record in m.list_allocations():
        m.client.release(record["allocation_id"])


@pytest.fixture(autouse=True)
def _restore_environment() -> Iterator[None]:
    """Framework setups write CUDA_VISIBLE_DEVICES and friends into os.environ; undo that."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(autouse=True, scope="session")
def _log_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Training logs of the tests go to a temporary directory, not the repository's logs/."""
    path = tmp_path_factory.mktemp("training-logs")
    os.environ["GPURM_LOG_DIR"] = str(path)
    yield path


@pytest.fixture
def unreachable_url() -> str:
    """An address where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"
