"""Bearer tokens from the Python client against the real daemon started with a
token file (server.auth.tokens_file): 401/403/429 become Unauthenticated,
PermissionDenied and LimitExceeded; allocations belong to the token's identity."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, Iterator, Tuple

import pytest

import gpurm
from gpurm import GpuRmClient, TrainingGPUConfig
from helpers import REPO, free_port

CAP = 2


def _binary() -> Path:
    return Path(os.environ.get("GPURM_BIN") or REPO / "build" / "gpurm")


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[str, Dict[str, str]]]:
    """A daemon requiring tokens; yields its URL and a token per identity."""
    binary = _binary()
    if not os.access(binary, os.X_OK):
        message = f"gpurm daemon binary {binary} not built (set GPURM_BIN or build it)"
        if os.environ.get("GPURM_REQUIRE_DAEMON") == "1":
            pytest.fail(message)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("gpurm-auth")
    tokens_file = root / "tokens"
    tokens: Dict[str, str] = {}
    for name, role in (("val", "viewer"), ("alice", "user"), ("bob", "user"), ("root", "admin")):
        created = subprocess.run(
            [str(binary), "token", "create", "--name", name, "--role", role, "--file", str(tokens_file)],
            capture_output=True, text=True, check=True)
        tokens[name] = created.stdout.strip()
    config = root / "gpu_config.yaml"
    config.write_text(f"server:\n  max_allocations_per_owner: {CAP}\n"
                      f"  auth:\n    tokens_file: {tokens_file}\n")
    port = free_port()
    output = root / "stderr.txt"
    with open(output, "wb") as stderr:
        process = subprocess.Popen(
            [str(binary), "serve", "--inventory", str(REPO / "examples" / "cluster-3node.yaml"),
             "--listen", f"127.0.0.1:{port}", "--data-dir", str(root / "data"),
             "--log-dir", str(root / "logs"), "--config", str(config)],
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
            pytest.fail("gpurm serve did not become healthy:\n" + output.read_text(errors="replace"))
        time.sleep(0.1)
    yield url, tokens
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=15)


def test_no_token_is_unauthenticated(secured: Tuple[str, Dict[str, str]]) -> None:
    url, _ = secured
    client = GpuRmClient(url, token="")
    assert client.health()["ready"] is True  # Liveness stays open.
    with pytest.raises(gpurm.Unauthenticated) as caught:
        client.status()
    assert caught.value.status == 401
    assert isinstance(caught.value, PermissionError)
    assert "GPURM_TOKEN" in str(caught.value)
    with pytest.raises(gpurm.Unauthenticated):
        GpuRmClient(url, token="gpurm_" + "0" * 64).status()


def test_viewer_reads_but_cannot_allocate(secured: Tuple[str, Dict[str, str]]) -> None:
    url, tokens = secured
    viewer = GpuRmClient(url, token=tokens["val"])
    assert viewer.status()["total_nodes"] == 3
    with pytest.raises(gpurm.PermissionDenied) as caught:
        viewer.allocate({"gpu_count": 1})
    assert caught.value.status == 403


def test_owner_is_the_token_identity(secured: Tuple[str, Dict[str, str]]) -> None:
    url, tokens = secured
    alice = gpurm.GPUResourceManager(url, owner="bob", token=tokens["alice"])
    allocation = alice.allocate(TrainingGPUConfig(gpu_count=1))
    try:
        assert alice.client.allocation(allocation.allocation_id)["owner"] == "alice"
        bob = GpuRmClient(url, token=tokens["bob"])
        with pytest.raises(gpurm.PermissionDenied):
            bob.release(allocation.allocation_id)
        with pytest.raises(gpurm.PermissionDenied):
            bob.heartbeat(allocation.allocation_id)
    finally:
        assert allocation.release()
    # An admin may release anyone's.
    again = alice.client.allocate({"gpu_count": 1})
    GpuRmClient(url, token=tokens["root"]).release(again["allocation_id"])
    assert alice.client.allocation(again["allocation_id"])["state"] == "released"


def test_token_from_the_environment(secured: Tuple[str, Dict[str, str]], tmp_path: Path) -> None:
    url, tokens = secured
    os.environ["GPURM_TOKEN"] = tokens["val"]
    assert GpuRmClient(url).status()["total_nodes"] == 3
    del os.environ["GPURM_TOKEN"]
    token_file = tmp_path / "token"
    token_file.write_text(tokens["val"] + "\n")
    os.environ["GPURM_TOKEN_FILE"] = str(token_file)
    assert GpuRmClient(url).status()["total_nodes"] == 3


def test_allocation_cap_is_limit_exceeded(secured: Tuple[str, Dict[str, str]]) -> None:
    url, tokens = secured
    bob = GpuRmClient(url, token=tokens["bob"])
    held = [bob.allocate({"gpu_count": 1})["allocation_id"] for _ in range(CAP)]
    try:
        with pytest.raises(gpurm.LimitExceeded) as caught:
            bob.allocate({"gpu_count": 1})
        assert caught.value.status == 429
        assert caught.value.field == "max_allocations_per_owner"
    finally:
        for allocation_id in held:
            bob.release(allocation_id)
    bob.release(bob.allocate({"gpu_count": 1})["allocation_id"])
