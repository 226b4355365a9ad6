"""A small REST client of the gpurm daemon (docs/api.md), on the standard library only."""

from __future__ import annotations

import getpass
import json
import os
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, Mapping, Optional

from .errors import GpuRmError, GpuRmUnavailable, error_from_response

DEFAULT_URL = "http://127.0.0.1:8000"
API_PREFIX = "/api/v1/gpu"
DEFAULT_TIMEOUT_SECONDS = 30.0


def resolve_base_url(url: Optional[str] = None) -> str:
    """The daemon address: ``url`` if given, else ``$GPURM_URL``, else
    ``http://127.0.0.1:8000``. A trailing ``/api/v1/gpu`` or slash is removed, and
    ``http://`` is assumed when no scheme is given."""
    base = (url or os.environ.get("GPURM_URL") or DEFAULT_URL).strip()
    if "://" not in base:
        base = "http://" + base
    base = base.rstrip("/")
    if base.endswith(API_PREFIX):
        base = base[: -len(API_PREFIX)]
    return base


def default_owner() -> str:
    """The owner sent with every request: ``$GPURM_OWNER``, else the login name."""
    owner = os.environ.get("GPURM_OWNER")
    if owner:
        return owner
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "anonymous"


def tls_context(
    ca_bundle: Optional[str] = None,
    client_cert: Optional[str] = None,
    client_key: Optional[str] = None,
    insecure: bool = False,
) -> ssl.SSLContext:
    """The TLS settings for an ``https://`` daemon: the certificate and host name
    are verified (TLS 1.2 or later) against ``ca_bundle``, else
    ``$GPURM_CA_BUNDLE``, else the system's trust store. ``client_cert`` /
    ``client_key`` (else ``$GPURM_CLIENT_CERT`` / ``$GPURM_CLIENT_KEY``) are
    presented to a daemon that requires client certificates. ``insecure=True``
    turns verification off; it is never taken from the environment."""
    cafile = ca_bundle or os.environ.get("GPURM_CA_BUNDLE") or None
    context = ssl.create_default_context(cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    cert = client_cert or os.environ.get("GPURM_CLIENT_CERT") or None
    key = client_key or os.environ.get("GPURM_CLIENT_KEY") or None
    if cert:
        context.load_cert_chain(cert, key)
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def default_token() -> str:
    """The bearer token to send when none is given: ``$GPURM_TOKEN``, else the
    first line of the file ``$GPURM_TOKEN_FILE`` names, else "" (none)."""
    token = os.environ.get("GPURM_TOKEN", "").strip()
    path = os.environ.get("GPURM_TOKEN_FILE", "")
    if token or not path:
        return token
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.readline().strip()
    except OSError as err:
        raise GpuRmError(f"cannot read GPURM_TOKEN_FILE {path!r}: {err}", code="invalid_argument") from None


class GpuRmClient:
    """Thin JSON-over-HTTP client; each method is one API call and returns the
    decoded answer. Non-2xx answers raise the :mod:`gpurm.errors` exception of
    their error code; connection failures, timeouts and failed TLS verification
    raise :class:`gpurm.GpuRmUnavailable`. Thread-safe (no shared mutable state).

    ``https://`` URLs are verified: see :func:`tls_context` for ``ca_bundle``,
    ``client_cert``, ``client_key`` and ``insecure``.

    ``token`` (else :func:`default_token`) is sent as ``Authorization: Bearer``
    to a daemon that requires tokens; the allocations it makes then belong to
    the token's identity, whatever ``owner`` says (an admin token may act on
    behalf of ``owner``). 401 raises :class:`gpurm.Unauthenticated`, 403
    :class:`gpurm.PermissionDenied`.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        *,
        owner: Optional[str] = None,
        timeout: Optional[float] = None,
        ca_bundle: Optional[str] = None,
        client_cert: Optional[str] = None,
        client_key: Optional[str] = None,
        insecure: bool = False,
        token: Optional[str] = None,
    ) -> None:
        self.base_url = resolve_base_url(url)
        self._token = default_token() if token is None else token.strip()
        self.owner = owner or default_owner()
        self.timeout = DEFAULT_TIMEOUT_SECONDS if timeout is None else timeout
        self._tls: Optional[ssl.SSLContext] = None
        if self.base_url.startswith("https://"):
            self._tls = tls_context(ca_bundle, client_cert, client_key, insecure)

    def __repr__(self) -> str:
        return f"GpuRmClient({self.base_url!r}, owner={self.owner!r})"

    # -- endpoints ---------------------------------------------------------

    def health(self) -> Dict[str, Any]:
        """GET /health; raises GpuRmUnavailable (with the reason) while not ready."""
        return self.request("GET", "/health")

    def status(self) -> Dict[str, Any]:
        """GET /status: utilization, available_nodes, totals, timestamp."""
        return self.request("GET", "/status")

    def nodes(self, gpu_type: Optional[str] = None, min_memory_gb: Optional[float] = None) -> Dict[str, Any]:
        """GET /nodes: ``{"nodes": [...], "count"}`` with free GPUs matching the filters."""
        query: Dict[str, Any] = {}
        if gpu_type:
            query["gpu_type"] = gpu_type
        if min_memory_gb is not None:
            query["min_memory_gb"] = min_memory_gb
        return self.request("GET", "/nodes", query=query)

    def allocate(self, request: Mapping[str, Any], idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        """POST /allocate; raises AllocationRefused (with reasons, would_fit) when nothing fits."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self.request("POST", "/allocate", body=request, headers=headers)

    def validate(self, request: Mapping[str, Any]) -> Dict[str, Any]:
        """POST /validate: possible_now, possible_ever, message, reasons, would_fit."""
        return self.request("POST", "/validate", body=request)

    def policies(self) -> Dict[str, Any]:
        """GET /policies: ``{"policies": [{"name", "description"}], "default"}``."""
        return self.request("GET", "/policies")

    def setup_tensorflow(self, request: Mapping[str, Any]) -> Dict[str, Any]:
        """POST /setup-tensorflow: ``{"success", "node_name", "plan"}``; nothing is reserved."""
        return self.request("POST", "/setup-tensorflow", body=request)

    def setup_pytorch(self, request: Mapping[str, Any]) -> Dict[str, Any]:
        """POST /setup-pytorch: ``{"success", "node_name", "plan"}``; nothing is reserved."""
        return self.request("POST", "/setup-pytorch", body=request)

    def allocations(self, include_ended: bool = False, owner: Optional[str] = None) -> Dict[str, Any]:
        """GET /allocations: ``{"allocations": [...], "count"}`` (active only unless include_ended)."""
        query: Dict[str, Any] = {}
        if include_ended:
            query["all"] = "true"
        if owner:
            query["owner"] = owner
        return self.request("GET", "/allocations", query=query)

    def allocation(self, allocation_id: str) -> Dict[str, Any]:
        """GET /allocations/{id}; raises NotFound for an unknown id."""
        return self.request("GET", f"/allocations/{_quote(allocation_id)}")

    def allocation_plan(self, allocation_id: str, framework: str) -> Dict[str, Any]:
        """GET /allocations/{id}/plan: the ``framework`` ("pytorch" or "tensorflow")
        plan for the allocation's GPUs, shaped like the setup answers."""
        return self.request("GET", f"/allocations/{_quote(allocation_id)}/plan",
                            query={"framework": framework})

    def release(self, allocation_id: str, timeout: Optional[float] = None) -> Dict[str, Any]:
        """DELETE /allocations/{id}: ``{"released": true, "allocation"}``; idempotent."""
        return self.request("DELETE", f"/allocations/{_quote(allocation_id)}", timeout=timeout)

    def release_on_node(self, node_name: str, gpu_count: int) -> Dict[str, Any]:
        """POST /release for the owner's newest active allocation of ``gpu_count``
        GPUs on ``node_name``: ``{"released": [ids], "count"}``."""
        return self.request("POST", "/release", body={"node_name": node_name, "gpu_count": gpu_count})

    def heartbeat(self, allocation_id: str) -> Dict[str, Any]:
        """POST /allocations/{id}/heartbeat: renews the lease; Conflict once it expired."""
        return self.request("POST", f"/allocations/{_quote(allocation_id)}/heartbeat")

    def monitoring(self, window_seconds: Optional[int] = None) -> Dict[str, Any]:
        """GET /monitoring: per node, per GPU samples with history."""
        query = {"window": window_seconds} if window_seconds is not None else {}
        return self.request("GET", "/monitoring", query=query)

    # -- transport ---------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Optional[Mapping[str, Any]] = None,
        query: Optional[Mapping[str, Any]] = None,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> Dict[str, Any]:
        """Sends one request to ``/api/v1/gpu`` + ``path`` and returns the decoded
        JSON object (``{}`` for an empty body)."""
        url = self.base_url + API_PREFIX + path
        if query:
            url += "?" + urllib.parse.urlencode({k: _query_value(v) for k, v in query.items()})
        data = None
        all_headers = {"Accept": "application/json", "X-Gpurm-Owner": self.owner}
        if self._token:
            all_headers["Authorization"] = "Bearer " + self._token
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        if method in ("POST", "PUT") and data is None:
            data = b""
        all_headers.update(headers or {})
        req = urllib.request.Request(url, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout, context=self._tls) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as err:
            raw = err.read()
            decoded = _decode(raw)
            raise error_from_response(err.code, decoded if isinstance(decoded, dict) else None,
                                      raw.decode("utf-8", "replace").strip()) from None
        except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError,
                ssl.SSLError) as err:
            # ssl.SSLError: under TLS 1.3 a server that refuses the client's
            # certificate says so after the handshake, on the first read.
            reason = getattr(err, "reason", err)
            raise GpuRmUnavailable(
                f"cannot reach {self.base_url} ({reason})", code="unavailable"
            ) from None
        if not raw.strip():
            return {}
        decoded = _decode(raw)
        if not isinstance(decoded, dict):
            raise GpuRmError(f"{method} {path}: expected a JSON object, got {raw[:200]!r}")
        return decoded


def _decode(raw: bytes) -> Optional[Any]:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
