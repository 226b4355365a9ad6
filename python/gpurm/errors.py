"""Exceptions raised by the gpurm client.

Every error the daemon answers (``{"error": {"code", "message", "field"}}``) and
every failure to reach it becomes a :class:`GpuRmError` subclass chosen by the
error code, so callers can catch exactly what they can handle:

==========================  ====================================================
``GpuRmUnavailable``        daemon unreachable, timed out, or answered 503
``InvalidRequest``          400 invalid_argument (also a ``ValueError``); also
                            raised locally by :class:`gpurm.TrainingGPUConfig`
``NotFound``                404 (unknown allocation id, ...)
``AllocationRefused``       409 unschedulable_now / unschedulable_never, with
                            ``reasons`` and ``would_fit``
``Conflict``                409 already_exists / failed_precondition (for
                            example a heartbeat on an expired lease)
``Unauthenticated``         401: no token, or one the daemon does not know (also
                            a ``PermissionError``)
``PermissionDenied``        403: the token's role may not do this, or the
                            allocation is someone else's (also a
                            ``PermissionError``)
``LimitExceeded``           429: the per-owner allocation cap
                            (``field == "max_allocations_per_owner"``) or a
                            request rate limit
``GpuRmError``              anything else (413 resource_exhausted, 500 internal)
==========================  ====================================================
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional


class GpuRmError(Exception):
    """Base of every gpurm client error.

    Attributes:
        message: what went wrong, as the daemon (or the client) said it.
        code: the API error code (``"invalid_argument"``, ``"unavailable"``, ...).
        status: the HTTP status, or None when no answer came back.
        field: the request field the error is about, or "".
        body: the decoded JSON answer, or None.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "internal",
        status: Optional[int] = None,
        field: str = "",
        body: Optional[Mapping[str, Any]] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.field = field
        self.body: Optional[Mapping[str, Any]] = body

    def __str__(self) -> str:
        where = f" (field {self.field})" if self.field else ""
        status = f"HTTP {self.status} " if self.status is not None else ""
        return f"{status}{self.code}: {self.message}{where}"


class GpuRmUnavailable(GpuRmError):
    """The daemon cannot serve the request now: unreachable, timed out, or 503
    (manager not initialized, storage failing). ``message`` carries the reason."""


class InvalidRequest(GpuRmError, ValueError):
    """A request value is invalid (HTTP 400, or caught before sending)."""


class NotFound(GpuRmError):
    """The named object (an allocation) does not exist (HTTP 404)."""


class Conflict(GpuRmError):
    """The request conflicts with the current state (HTTP 409
    already_exists / failed_precondition), e.g. renewing an expired lease."""


class Unauthenticated(GpuRmError, PermissionError):
    """HTTP 401: the daemon requires a bearer token and got none, or one it does
    not know (revoked?). Pass ``token=`` or set ``GPURM_TOKEN``."""

    def __str__(self) -> str:
        return super().__str__() + " (pass token= or set GPURM_TOKEN / GPURM_TOKEN_FILE)"


class PermissionDenied(GpuRmError, PermissionError):
    """HTTP 403: authenticated, but the token's role may not do this (a viewer
    allocating), or the allocation belongs to someone else."""


class LimitExceeded(GpuRmError):
    """HTTP 429: a limit was hit; retry after releasing an allocation (the
    per-owner cap, ``field == "max_allocations_per_owner"``) or after a pause
    (the request rate limit)."""


class AllocationRefused(GpuRmError):
    """No placement for the request (HTTP 409 unschedulable_now / unschedulable_never).

    Attributes:
        reasons: ``[{"node_name", "reason"}]``, why each node could not take it.
        would_fit: what the cluster could give instead (``max_gpus_on_one_node``,
            ``max_memory_gb_per_gpu``, ``gpu_types_available``, ``suggestion``).
        possible_ever: False when the request can never be met by this cluster
            (code unschedulable_never), True when it may fit later.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "unschedulable_now",
        status: Optional[int] = 409,
        field: str = "",
        body: Optional[Mapping[str, Any]] = None,
        reasons: Optional[List[Dict[str, str]]] = None,
        would_fit: Optional[Dict[str, Any]] = None,
    ) -> None:
        super().__init__(message, code=code, status=status, field=field, body=body)
        self.reasons: List[Dict[str, str]] = list(reasons or [])
        self.would_fit: Dict[str, Any] = dict(would_fit or {})
        self.possible_ever = code != "unschedulable_never"

    def __str__(self) -> str:
        text = super().__str__()
        details = "; ".join(f"{r.get('node_name', '?')}: {r.get('reason', '')}" for r in self.reasons)
        if details:
            text += f" [{details}]"
        suggestion = self.would_fit.get("suggestion")
        if suggestion:
            text += f" (would fit: {suggestion})"
        return text


_BY_CODE = {
    "invalid_argument": InvalidRequest,
    "not_found": NotFound,
    "already_exists": Conflict,
    "failed_precondition": Conflict,
    "unavailable": GpuRmUnavailable,
}


# Statuses that decide the class whatever the code says.
_BY_STATUS = {401: Unauthenticated, 403: PermissionDenied, 429: LimitExceeded}


def error_from_response(status: int, body: Optional[Mapping[str, Any]], fallback_text: str) -> GpuRmError:
    """Builds the exception for a non-2xx answer.

    ``body`` is the decoded JSON answer (None when it was not JSON); the code is
    taken from ``body["error"]["code"]``, else derived from the HTTP status.
    """
    error: Mapping[str, Any] = {}
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        error = body["error"]
    code = str(error.get("code") or _code_for_status(status))
    message = str(error.get("message") or (body or {}).get("reason") or fallback_text or f"HTTP {status}")
    field = str(error.get("field") or "")
    if code in ("unschedulable_now", "unschedulable_never"):
        return AllocationRefused(
            message,
            code=code,
            status=status,
            field=field,
            body=body,
            reasons=list((body or {}).get("reasons") or []),
            would_fit=dict((body or {}).get("would_fit") or {}),
        )
    cls = _BY_STATUS.get(status) or _BY_CODE.get(code, GpuRmError)
    return cls(message, code=code, status=status, field=field, body=body)


def _code_for_status(status: int) -> str:
    return {
        400: "invalid_argument",
        401: "unauthenticated",
        403: "permission_denied",
        404: "not_found",
        409: "failed_precondition",
        413: "resource_exhausted",
        429: "resource_exhausted",
        503: "unavailable",
    }.get(status, "internal")
