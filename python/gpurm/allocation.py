"""Allocations held by this process: release on exit / exception / SIGTERM,
and the heartbeat thread that keeps a lease alive."""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Any, Callable, Dict, List, Mapping, Optional, Set, Type, Union

from .client import GpuRmClient
from .config import TrainingGPUConfig
from .errors import Conflict, GpuRmError, NotFound

log = logging.getLogger("gpurm")

#: Seconds allowed for each release sent while the process is being stopped.
_SHUTDOWN_RELEASE_TIMEOUT = 5.0


@dataclass(frozen=True)
class GpuGrant:
    """One GPU (or a memory slice of one) granted to an allocation."""

    node_name: str
    gpu_index: int
    gpu_uuid: str
    memory_gb: float
    exclusive: bool

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "GpuGrant":
        return cls(
            node_name=str(data.get("node_name", "")),
            gpu_index=int(data.get("gpu_index", 0)),
            gpu_uuid=str(data.get("gpu_uuid", "")),
            memory_gb=float(data.get("memory_gb", 0.0)),
            exclusive=bool(data.get("exclusive", True)),
        )


class Allocation:
    """GPUs granted to this process by ``POST /allocate``.

    Use it as a context manager: the allocation is released when the block
    ends, normally or by an exception. Until released it is also released when
    the interpreter exits and when the process gets SIGTERM (the previous
    SIGTERM behaviour then follows). When the request asked for a lease
    (``lease_ttl_seconds > 0``) a daemon thread renews it every third of the TTL;
    if the process is killed the renewals stop and the daemon ends the
    allocation when the lease lapses (state ``"expired"``).
    """

    def __init__(self, client: GpuRmClient, answer: Mapping[str, Any], config: TrainingGPUConfig) -> None:
        record: Mapping[str, Any] = answer.get("allocation") or {}
        self._client = client
        self.config = config
        self.allocation_id: str = str(answer.get("allocation_id") or record.get("allocation_id", ""))
        self.node_name: str = str(answer.get("node_name") or record.get("node_name", ""))
        self.nodes: List[str] = [str(n) for n in (answer.get("nodes") or record.get("nodes") or [self.node_name])]
        self.gpus: List[GpuGrant] = [GpuGrant.from_json(g) for g in (answer.get("gpus") or record.get("gpus") or [])]
        self.gpu_config: Dict[str, Any] = dict(answer.get("gpu_config") or {})
        self.record: Dict[str, Any] = dict(record)
        self.lease_ttl_seconds: int = int(record.get("lease_ttl_seconds") or config.lease_ttl_seconds or 0)
        self._lock = threading.RLock()  # re-entered by the SIGTERM handler
        self._released = False
        self._lease_lost: Optional[str] = None
        self._stop = threading.Event()
        self._heartbeat: Optional[threading.Thread] = None
        _registry.add(self)
        if self.lease_ttl_seconds > 0:
            self._heartbeat = threading.Thread(
                target=self._keep_lease, name=f"gpurm-heartbeat-{self.allocation_id}", daemon=True
            )
            self._heartbeat.start()

    def __repr__(self) -> str:
        state = "released" if self._released else "active"
        return (f"Allocation({self.allocation_id!r}, node={self.node_name!r}, gpus={len(self.gpus)}, "
                f"{state})")

    @property
    def gpu_count(self) -> int:
        """GPUs granted (memory slices count as one each)."""
        return len(self.gpus)

    @property
    def released(self) -> bool:
        """True once :meth:`release` ran (or the daemon ended the allocation)."""
        return self._released

    @property
    def lease_lost(self) -> Optional[str]:
        """Why the lease could not be renewed (the daemon ended the allocation), else None."""
        return self._lease_lost

    def gpu_indices(self, node_name: Optional[str] = None) -> List[int]:
        """Indexes (PCI bus order) of the GPUs granted on ``node_name`` (default: this allocation's node)."""
        node = node_name or self.node_name
        return [g.gpu_index for g in self.gpus if g.node_name == node]

    def heartbeat(self) -> Dict[str, Any]:
        """Renews the lease now; returns the allocation record. Raises Conflict
        when the lease already expired (the daemon then ended the allocation)."""
        answer = self._client.heartbeat(self.allocation_id)
        self.record = dict(answer.get("allocation") or self.record)
        return self.record

    def refresh(self) -> Dict[str, Any]:
        """Fetches the allocation record from the daemon (state, lease_expires_at, ...)."""
        self.record = self._client.allocation(self.allocation_id)
        return self.record

    def release(self, timeout: Optional[float] = None) -> bool:
        """Gives the GPUs back (DELETE /allocations/{id}) and stops the heartbeat.
        Idempotent; returns True when this call released it, False when it was
        already released. Errors from the daemon propagate (the allocation stays
        registered, so exit / SIGTERM try again)."""
        with self._lock:
            if self._released:
                return False
            try:
                answer = self._client.release(self.allocation_id, timeout=timeout)
            except NotFound:
                answer = {}
            self._stop.set()
            self.record = dict(answer.get("allocation") or self.record)
            self._released = True
        _registry.discard(self)
        log.info("released allocation %s (%d GPU(s) on %s)", self.allocation_id, self.gpu_count,
                 ",".join(self.nodes))
        return True

    def __enter__(self) -> "Allocation":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.release()

    def _keep_lease(self) -> None:
        interval = max(self.lease_ttl_seconds / 3.0, 0.1)
        while not self._stop.wait(interval):
            try:
                with self._lock:  # never renews concurrently with release()
                    if self._released:
                        return
                    self.heartbeat()
            except (Conflict, NotFound) as err:
                self._lease_lost = err.message
                log.error("lease of allocation %s lost: %s", self.allocation_id, err.message)
                return
            except GpuRmError as err:
                log.warning("heartbeat of allocation %s failed (will retry): %s", self.allocation_id, err)


class _Registry:
    """The allocations this process holds, released at exit and on SIGTERM."""

    def __init__(self) -> None:
        self._lock = threading.RLock()  # the SIGTERM handler may interrupt a holder
        self._live: Set[Allocation] = set()
        self._atexit_registered = False
        # signal.signal works only in the main thread: the handler is installed
        # by the first install() made there (the manager's constructor or the
        # first allocation); leases cover allocations made before that.
        self._sigterm_installed = False
        self._previous: Union[Callable[[int, Optional[FrameType]], Any], int, None] = None

    def add(self, allocation: Allocation) -> None:
        self.install()
        with self._lock:
            self._live.add(allocation)

    def install(self) -> None:
        """Registers the exit hook (once) and, when called from the main thread,
        the SIGTERM handler (once)."""
        with self._lock:
            if not self._atexit_registered:
                self._atexit_registered = True
                atexit.register(self.release_all)
            if self._sigterm_installed or threading.current_thread() is not threading.main_thread():
                return
            self._sigterm_installed = True
            previous = signal.getsignal(signal.SIGTERM)
            if previous is signal.SIG_IGN:
                return
            self._previous = previous
            signal.signal(signal.SIGTERM, self._on_sigterm)

    def discard(self, allocation: Allocation) -> None:
        with self._lock:
            self._live.discard(allocation)

    def live(self) -> List[Allocation]:
        with self._lock:
            return list(self._live)

    def release_all(self) -> None:
        """Releases every allocation still held; errors are logged, not raised."""
        for allocation in self.live():
            try:
                allocation.release(timeout=_SHUTDOWN_RELEASE_TIMEOUT)
            except GpuRmError as err:
                log.error("could not release allocation %s: %s", allocation.allocation_id, err)

    def _on_sigterm(self, signum: int, frame: Optional[FrameType]) -> None:
        log.warning("SIGTERM: releasing %d allocation(s)", len(self.live()))
        self.release_all()
        previous = self._previous
        if callable(previous):
            previous(signum, frame)
            return
        # The default action: die by the signal, so the parent sees it.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


_registry = _Registry()


def install_release_handlers() -> None:
    """Makes sure allocations are released at interpreter exit and on SIGTERM.
    Called by the manager; call it from the main thread when allocating from
    other threads only."""
    _registry.install()


def held_allocations() -> List[Allocation]:
    """Allocations this process holds and has not released."""
    return _registry.live()
