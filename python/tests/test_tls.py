"""The Python client against the real daemon over TLS.

A test CA, server and client certificates are made with the openssl command
for this module (no key is committed). With ``ca_bundle=`` (or
``$GPURM_CA_BUNDLE``) the client verifies the daemon and works; without it
verification fails with GpuRmUnavailable; ``insecure=True`` is only ever an
explicit argument; a daemon with a client CA refuses clients without a
certificate.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator, Tuple

import pytest

import gpurm
from gpurm.client import GpuRmClient
from helpers import REPO, free_port

INVENTORY = REPO / "examples" / "cluster-3node.yaml"


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def _make_leaf(directory: Path, name: str, usage: str, serial: str) -> None:
    """``name``.pem/.key signed by ca.pem, for ``usage`` (serverAuth or clientAuth)."""
    (directory / f"{name}.ext").write_text(
        f"basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage={usage}\n"
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(directory / f"{name}.key"), "-out", str(directory / f"{name}.csr"),
             "-subj", f"/CN={name}")
    _openssl("x509", "-req", "-in", str(directory / f"{name}.csr"), "-CA", str(directory / "ca.pem"),
             "-CAkey", str(directory / "ca.key"), "-set_serial", serial, "-days", "3650",
             "-out", str(directory / f"{name}.pem"), "-extfile", str(directory / f"{name}.ext"))


def _make_pki(directory: Path) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(directory / "ca.key"), "-out", str(directory / "ca.pem"),
             "-days", "3650", "-subj", "/CN=gpurm python test CA")
    _make_leaf(directory, "server", "serverAuth", "0x1001")
    _make_leaf(directory, "client", "clientAuth", "0x2002")


def _serve_tls(tmp_path_factory: pytest.TempPathFactory, mutual: bool) -> Iterator[Tuple[str, Path]]:
    """Runs a daemon over TLS (requiring client certificates from the same CA
    when ``mutual``) and yields ``(https URL, directory of the PKI)``."""
    binary = Path(os.environ.get("GPURM_BIN") or REPO / "build" / "gpurm")
    if not os.access(binary, os.X_OK):
        message = f"gpurm daemon binary {binary} not built (set GPURM_BIN or build it)"
        if os.environ.get("GPURM_REQUIRE_DAEMON") == "1":
            pytest.fail(message)
        pytest.skip(message)
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    root = tmp_path_factory.mktemp("gpurm-tls")
    _make_pki(root)
    config = root / "gpu_config.yaml"
    config.write_text(f"server:\n  tls:\n    cert_file: {root / 'server.pem'}\n"
                      f"    key_file: {root / 'server.key'}\n"
                      + (f"    client_ca_file: {root / 'ca.pem'}\n" if mutual else ""))
    port = free_port()
    log = root / "stderr.txt"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(binary), "serve", "--inventory", str(INVENTORY), "--listen", f"127.0.0.1:{port}",
             "--data-dir", str(root / "data"), "--log-dir", str(root / "logs"),
             "--config", str(config)],
            stdout=out, stderr=subprocess.STDOUT, cwd=root)
    url = f"https://127.0.0.1:{port}"
    client = GpuRmClient(url, ca_bundle=str(root / "ca.pem"), timeout=2,
                         client_cert=str(root / "client.pem"), client_key=str(root / "client.key"))
    deadline = time.monotonic() + 30
    while True:
        try:
            client.health()
            break
        except gpurm.GpuRmError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                pytest.fail("gpurm serve (TLS) did not become healthy:\n"
                            + log.read_text(errors="replace")[-4000:])
            time.sleep(0.1)
    yield url, root
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def tls_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[str, Path]]:
    """``(https URL, CA bundle path)`` of a daemon serving TLS."""
    for url, root in _serve_tls(tmp_path_factory, mutual=False):
        yield url, root / "ca.pem"


@pytest.fixture(scope="module")
def mtls_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[str, Path]]:
    """``(https URL, PKI directory)`` of a daemon that requires client certificates."""
    yield from _serve_tls(tmp_path_factory, mutual=True)


def test_ca_bundle_argument_verifies_the_daemon(tls_daemon: Tuple[str, Path]) -> None:
    url, ca = tls_daemon
    client = GpuRmClient(url, ca_bundle=str(ca))
    assert client.status()["total_gpus"] > 0
    allocation = client.allocate({"gpu_count": 1})
    assert allocation["success"] is True
    released = client.release(allocation["allocation_id"])
    assert released["released"] is True


def test_ca_bundle_from_the_environment(tls_daemon: Tuple[str, Path],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    url, ca = tls_daemon
    monkeypatch.setenv("GPURM_CA_BUNDLE", str(ca))
    monkeypatch.setenv("GPURM_URL", url)
    assert GpuRmClient().health()
    # The manager, built on the client, verifies the same way.
    assert gpurm.GPUResourceManager(url).client.health()


def test_without_the_ca_verification_fails(tls_daemon: Tuple[str, Path],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    url, _ = tls_daemon
    monkeypatch.delenv("GPURM_CA_BUNDLE", raising=False)
    with pytest.raises(gpurm.GpuRmUnavailable, match="CERTIFICATE_VERIFY_FAILED|certificate"):
        GpuRmClient(url).health()


def test_insecure_is_explicit(tls_daemon: Tuple[str, Path]) -> None:
    url, _ = tls_daemon
    assert GpuRmClient(url, insecure=True).health()


def test_mutual_tls_needs_the_client_certificate(mtls_daemon: Tuple[str, Path],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    url, pki = mtls_daemon
    ca = str(pki / "ca.pem")
    with_cert = GpuRmClient(url, ca_bundle=ca, client_cert=str(pki / "client.pem"),
                            client_key=str(pki / "client.key"))
    assert with_cert.health()
    monkeypatch.delenv("GPURM_CLIENT_CERT", raising=False)
    with pytest.raises(gpurm.GpuRmUnavailable):
        GpuRmClient(url, ca_bundle=ca).health()
    # The same certificate from the environment.
    monkeypatch.setenv("GPURM_CLIENT_CERT", str(pki / "client.pem"))
    monkeypatch.setenv("GPURM_CLIENT_KEY", str(pki / "client.key"))
    assert GpuRmClient(url, ca_bundle=ca).health()
