"""The Python face of the gpurm daemon: :class:`GPUResourceManager` and
:func:`get_gpu_resource_manager` (names as in python/README.md)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Union

from .allocation import Allocation, install_release_handlers
from .client import GpuRmClient, resolve_base_url
from .config import TrainingGPUConfig, as_config
from .errors import AllocationRefused, GpuRmError, NotFound

log = logging.getLogger("gpurm")

ConfigLike = Union[TrainingGPUConfig, Mapping[str, Any], None]


@dataclass(frozen=True)
class GpuNode:
    """A node with free GPUs of one type (a node with several types appears once per type).

    ``available_gpus`` counts whole free GPUs (or free MIG devices of one profile,
    ``gpu_type`` "A100 MIG 3g.40gb"), ``memory_per_gpu`` is GB per GPU,
    ``utilization`` is 0..1, or None where the devices report none (MIG devices).
    ``gpus`` holds the per-GPU detail of ``GET /nodes``.
    """

    node_name: str
    gpu_type: str
    available_gpus: int
    memory_per_gpu: float
    utilization: Optional[float]
    total_gpus: int = 0
    max_free_memory_gb: float = 0.0
    gpus: List[Dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "GpuNode":
        return cls(
            node_name=str(data.get("node_name", "")),
            gpu_type=str(data.get("gpu_type", "")),
            available_gpus=int(data.get("available_gpus", 0)),
            memory_per_gpu=float(data.get("memory_per_gpu", 0.0)),
            utilization=None if data.get("utilization", 0.0) is None else float(data.get("utilization", 0.0)),
            total_gpus=int(data.get("total_gpus", 0)),
            max_free_memory_gb=float(data.get("max_free_memory_gb", 0.0)),
            gpus=[dict(g) for g in data.get("gpus") or []],
        )


@dataclass(frozen=True)
class ValidationResult:
    """The answer of ``POST /validate``: can the request be met now, ever, why not, what would fit."""

    possible_now: bool
    possible_ever: bool
    message: str
    reasons: List[Dict[str, str]]
    would_fit: Dict[str, Any]

    def __bool__(self) -> bool:
        return self.possible_now

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ValidationResult":
        possible_now = bool(data.get("possible_now", data.get("valid", False)))
        return cls(
            possible_now=possible_now,
            possible_ever=bool(data.get("possible_ever", possible_now)),
            message=str(data.get("message", "")),
            reasons=[dict(r) for r in data.get("reasons") or []],
            would_fit=dict(data.get("would_fit") or {}),
        )


class GPUResourceManager:
    """Client-side manager: asks the daemon for GPUs and keeps what it granted.

    Construction does not contact the daemon; each method is one or two API
    calls. Errors raise :mod:`gpurm.errors` exceptions (GpuRmUnavailable when
    the daemon cannot be reached or is not ready), except where a method says
    it returns None/False instead.
    """

    def __init__(self, url: Optional[str] = None, *, owner: Optional[str] = None,
                 timeout: Optional[float] = None, token: Optional[str] = None) -> None:
        self.client = GpuRmClient(url, owner=owner, timeout=timeout, token=token)
        self._lock = threading.Lock()
        self._allocations: List[Allocation] = []
        install_release_handlers()

    def __repr__(self) -> str:
        return f"GPUResourceManager({self.client.base_url!r})"

    @property
    def url(self) -> str:
        """The daemon's base address."""
        return self.client.base_url

    # -- readiness ---------------------------------------------------------

    def health(self) -> Dict[str, Any]:
        """GET /health; raises GpuRmUnavailable with the reason while the daemon is not ready."""
        return self.client.health()

    def is_ready(self) -> bool:
        """True when the daemon answers /health with 200."""
        try:
            self.client.health()
            return True
        except GpuRmError:
            return False

    # -- requests ----------------------------------------------------------

    def check_gpu_requirements(self, cfg: ConfigLike) -> ValidationResult:
        """Asks the daemon whether ``cfg`` can be met now and ever, why not, and what would fit."""
        return ValidationResult.from_json(self.client.validate(as_config(cfg).to_request()))

    def validate_gpu_requirements(self, cfg: ConfigLike) -> bool:
        """True when the request can be met now. An invalid config raises
        :class:`gpurm.InvalidRequest` (a ValueError) naming the field: before
        anything is sent for a malformed value, from the daemon's 400 for a
        value only the daemon can judge (an unknown policy)."""
        result = self.check_gpu_requirements(cfg)
        if not result.possible_now:
            log.info("GPU request %s cannot be met now: %s", as_config(cfg).to_request(), result.message)
        return result.possible_now

    def allocate(self, cfg: ConfigLike, *, idempotency_key: Optional[str] = None) -> Allocation:
        """Allocates GPUs for ``cfg`` and returns the :class:`Allocation` (a
        context manager). Raises :class:`gpurm.AllocationRefused` (with reasons
        and would_fit) when nothing fits."""
        config = as_config(cfg)
        answer = self.client.allocate(config.to_request(), idempotency_key=idempotency_key)
        allocation = Allocation(self.client, answer, config)
        with self._lock:
            self._allocations.append(allocation)
        log.info("allocated %s: %d GPU(s) on %s", allocation.allocation_id, allocation.gpu_count,
                 ",".join(allocation.nodes))
        return allocation

    def allocate_gpu_resources(self, cfg: ConfigLike) -> Optional[str]:
        """Allocates GPUs for ``cfg``; returns the node name (the first node of a
        multi-node allocation), or None when nothing fits now or ever (the reason
        is logged). The :class:`Allocation` is kept: see :attr:`allocations`,
        :meth:`cleanup_gpu_resources` and :meth:`release_allocation`."""
        try:
            return self.allocate(cfg).node_name
        except AllocationRefused as err:
            log.warning("no GPUs allocated: %s", err)
            return None

    @property
    def allocations(self) -> List[Allocation]:
        """Allocations made through this manager and not released, oldest first."""
        with self._lock:
            self._allocations = [a for a in self._allocations if not a.released]
            return list(self._allocations)

    def cleanup_gpu_resources(self, node_name: Optional[str], gpu_count: int) -> bool:
        """Releases the newest allocation of ``gpu_count`` GPUs on ``node_name``:
        one this manager holds if any, else the owner's newest matching one on
        the daemon. Returns True when something was released; False when
        ``node_name`` is None/empty (nothing was allocated) or nothing matched."""
        if not node_name:
            return False
        for allocation in reversed(self.allocations):
            if allocation.node_name == node_name and allocation.gpu_count == gpu_count:
                return allocation.release()
        try:
            answer = self.client.release_on_node(node_name, gpu_count)
        except NotFound:
            return False
        return int(answer.get("count", len(answer.get("released") or []))) > 0

    def release_allocation(self, allocation_id: str) -> Dict[str, Any]:
        """Releases an allocation by id (idempotent); returns its final record."""
        for allocation in self.allocations:
            if allocation.allocation_id == allocation_id:
                allocation.release()
                return allocation.record
        return dict(self.client.release(allocation_id).get("allocation") or {})

    def list_allocations(self, include_ended: bool = False, owner: Optional[str] = None) -> List[Dict[str, Any]]:
        """Allocation records on the daemon (active only unless ``include_ended``)."""
        return list(self.client.allocations(include_ended, owner).get("allocations") or [])

    def get_allocation(self, allocation_id: str) -> Dict[str, Any]:
        """One allocation record; raises NotFound for an unknown id."""
        return self.client.allocation(allocation_id)

    # -- observing ---------------------------------------------------------

    def get_gpu_monitoring_data(self, window_seconds: Optional[int] = None) -> Dict[str, Any]:
        """GET /monitoring: ``"utilization"``, the cluster-wide summary also in
        :meth:`get_cluster_status` (``gpu_utilization``, ``gpu_memory_usage``,
        ``gpu_memory_reserved``; ratios 0..1), and ``"nodes"``: per node, per
        GPU utilization, memory, temperature, power, health and history (the
        last ``window_seconds`` when given, else an hour)."""
        return self.client.monitoring(window_seconds)

    def get_allocation_usage(self, allocation_id: str) -> List[Dict[str, Any]]:
        """What an allocation's processes use, per GPU they run on (from the
        daemon's latest sampling pass): ``node_name``, ``gpu_index``,
        ``gpu_uuid``, ``used_gb``, ``granted_gb`` (0 on a GPU it was not
        granted), ``over_grant`` and ``processes`` (each with ``pid``,
        ``memory_used_gb``, ``class`` ...). Empty when none of its processes
        is on a GPU."""
        return allocation_usage(self.client.monitoring(0), allocation_id)

    def get_available_gpu_nodes(self, gpu_type: Optional[str] = None,
                                min_memory_gb: Optional[float] = None) -> List[GpuNode]:
        """Nodes with free GPUs, optionally only of ``gpu_type`` with at least
        ``min_memory_gb`` free on a GPU."""
        answer = self.client.nodes(gpu_type, min_memory_gb)
        return [GpuNode.from_json(n) for n in answer.get("nodes") or []]

    def get_node_names(self) -> List[str]:
        """Every node the daemon manages, in its order, with free GPUs or not
        (:meth:`get_available_gpu_nodes` lists only nodes with free GPUs)."""
        return [str(n.get("node_name", "")) for n in self.client.monitoring(0).get("nodes") or []]

    def get_placement_policies(self) -> Dict[str, str]:
        """The placement policies the daemon implements, name -> description,
        in its order (the default first unless ``server.policy`` says
        otherwise; :meth:`get_default_placement_policy` names it). These are the
        values :attr:`gpurm.TrainingGPUConfig.policy` accepts besides ""."""
        answer = self.client.policies()
        return {str(p["name"]): str(p.get("description", "")) for p in answer.get("policies") or []}

    def get_default_placement_policy(self) -> str:
        """The policy the daemon uses when a request names none (``server.policy``)."""
        return str(self.client.policies().get("default", ""))

    def get_cluster_status(self) -> Dict[str, Any]:
        """GET /status: utilization ratios, available nodes, totals, timestamp."""
        return self.client.status()


_managers: Dict[str, GPUResourceManager] = {}
_managers_lock = threading.Lock()


def get_gpu_resource_manager(url: Optional[str] = None) -> GPUResourceManager:
    """The process-wide manager for the daemon at ``url`` (else ``$GPURM_URL``,
    else http://127.0.0.1:8000); the same object for the same address."""
    base = resolve_base_url(url)
    with _managers_lock:
        manager = _managers.get(base)
        if manager is None:
            manager = _managers[base] = GPUResourceManager(base)
        return manager


def allocation_usage(monitoring: Mapping[str, Any], allocation_id: str) -> List[Dict[str, Any]]:
    """The per-GPU usage of ``allocation_id`` in a GET /monitoring answer
    (see :meth:`GPUResourceManager.get_allocation_usage`)."""
    usage: List[Dict[str, Any]] = []
    for node in monitoring.get("nodes") or []:
        gpus = list(node.get("gpus") or [])
        for gpu in list(gpus):
            gpus.extend(gpu.get("mig_devices") or [])
        for gpu in gpus:
            for entry in gpu.get("allocation_usage") or []:
                if entry.get("allocation_id") != allocation_id:
                    continue
                usage.append({
                    "node_name": node.get("node_name"),
                    "gpu_index": gpu.get("index"),
                    "gpu_uuid": gpu.get("uuid"),
                    "used_gb": entry.get("used_gb", 0.0),
                    "granted_gb": entry.get("granted_gb", 0.0),
                    "over_grant": bool(entry.get("over_grant", False)),
                    "processes": [p for p in gpu.get("processes") or []
                                  if p.get("allocation_id") == allocation_id],
                })
    return usage
