"""Where a framework plan comes from.

A plan is what the daemon builds (src/integrations/frameworks/plan.cc) and
answers on ``POST /setup-tensorflow`` / ``POST /setup-pytorch`` (for the GPUs a
request would get now) and on ``GET /allocations/{id}/plan?framework=...``
(for the GPUs an allocation holds). This package only applies plans: it picks
the part of a multi-node plan for the node it runs on. The one plan built here
is the CPU plan used when the daemon cannot be reached, which hides every GPU
so that an unmanaged job never grabs GPUs other jobs hold.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from .allocation import Allocation
from .config import TrainingGPUConfig
from .errors import GpuRmUnavailable
from .manager import GPUResourceManager

TENSORFLOW = "tensorflow"
PYTORCH = "pytorch"

#: Hides every GPU from the CUDA and HIP runtimes.
CPU_ENVIRONMENT = {"CUDA_VISIBLE_DEVICES": "", "HIP_VISIBLE_DEVICES": ""}


@dataclass
class PlanSource:
    """A plan plus where it came from.

    Attributes:
        plan: the plan JSON (field names as in plan.cc).
        node_name: the node the plan is for ("" for a CPU plan).
        allocation_id: the allocation the GPUs belong to; "" when the GPUs are
            only what the request would get now (not reserved) or for the CPU.
        reserved: True when the GPUs are held by an allocation.
        notes: why the plan is what it is (fallback reasons, warnings).
    """

    plan: Dict[str, Any]
    node_name: str = ""
    allocation_id: str = ""
    reserved: bool = False
    notes: List[str] = field(default_factory=list)


def local_node_name(node_names: List[str]) -> str:
    """The node this process runs on, among ``node_names``: ``$GPURM_NODE_NAME``
    when set, else the one equal to this host's name (short or full), else the first."""
    wanted = os.environ.get("GPURM_NODE_NAME")
    if wanted and wanted in node_names:
        return wanted
    host = socket.gethostname()
    for name in node_names:
        if name in (host, host.split(".")[0]):
            return name
    return node_names[0] if node_names else ""


def cpu_plan(framework: str, reason: str) -> Dict[str, Any]:
    """A plan that runs on the CPU with every GPU hidden; ``reason`` goes into its warnings."""
    if framework == TENSORFLOW:
        return {
            "device": "cpu", "physical_device_type": "CPU", "visible_devices": [],
            "environment": dict(CPU_ENVIRONMENT), "nodes": [], "memory_limit_mb": None,
            "memory_growth": False, "mixed_precision_policy": "float32", "loss_scaling": False,
            "strategy": "default", "communication": None, "tf_config": None,
            "batch_size_estimate": None, "warnings": [reason],
        }
    return {
        "device": "cpu", "visible_devices": [], "environment": dict(CPU_ENVIRONMENT), "nodes": [],
        "per_process_memory_fraction": None, "memory_limit_mb": None,
        "amp": {"enabled": False, "dtype": "float32", "grad_scaler": False},
        "distributed": {"enabled": False, "backend": "gloo", "world_size": 1, "nnodes": 1,
                        "nproc_per_node": 1, "master_addr": "127.0.0.1", "master_port": 29500,
                        "environment": {}},
        "batch_size_estimate": None, "warnings": [reason],
    }


def _localize(plan: Dict[str, Any]) -> Dict[str, Any]:
    """For a plan over several nodes, takes visible_devices and environment
    (TF_CONFIG task index included) of the node this process runs on."""
    nodes: List[Mapping[str, Any]] = list(plan.get("nodes") or [])
    if len(nodes) < 2:
        return plan
    names = [str(n.get("node_name", "")) for n in nodes]
    node = nodes[names.index(local_node_name(names))]
    plan["visible_devices"] = list(node.get("visible_devices") or [])
    plan["environment"] = dict(node.get("environment") or {})
    return plan


def export_environment(plan: Mapping[str, Any]) -> Dict[str, str]:
    """Sets the plan's environment variables in this process (before the
    framework initializes its devices) and returns them."""
    environment = {str(k): str(v) for k, v in (plan.get("environment") or {}).items()}
    os.environ.update(environment)
    return environment


def obtain_plan(
    manager: GPUResourceManager,
    framework: str,
    config: TrainingGPUConfig,
    allocation: Optional[Allocation],
) -> PlanSource:
    """The plan to apply for ``config``, as the daemon builds it.

    With ``allocation`` (or, failing that, the newest allocation ``manager``
    holds for an equal config) the plan covers the allocation's GPUs
    (``GET /allocations/{id}/plan``). Otherwise the daemon is asked what the
    request would get now (nothing is reserved). When the daemon cannot be
    reached the plan is for the CPU. Never raises GpuRmUnavailable; an invalid
    config raises InvalidRequest, an allocation that has ended (released, or
    its lease lapsed) raises Conflict.
    """
    if allocation is None:
        held = [a for a in manager.allocations if a.config == config]
        allocation = held[-1] if held else None
    try:
        if allocation is not None:
            answer = manager.client.allocation_plan(allocation.allocation_id, framework)
        elif framework == TENSORFLOW:
            answer = manager.client.setup_tensorflow(config.to_request())
        else:
            answer = manager.client.setup_pytorch(config.to_request())
    except GpuRmUnavailable as err:
        reason = f"gpurm daemon unavailable: {err.message}; running on the CPU with GPUs hidden"
        return PlanSource(cpu_plan(framework, reason), notes=[reason])
    plan = _localize(dict(answer.get("plan") or {}))
    on_gpu = plan.get("device") != "cpu"
    notes = list(plan.get("warnings") or [])
    if not answer.get("success", False):
        why = str(answer.get("message", ""))
        # The daemon's message for an allocation names it and says why the plan is for the CPU.
        notes.insert(0, f"no GPU fits the request now ({why}): running on the CPU" if allocation is None else why)
    elif allocation is None and on_gpu:
        notes.append("GPUs planned but not reserved: allocate them first to hold them against other jobs")
    node_names = [str(n.get("node_name", "")) for n in plan.get("nodes") or []]
    node = local_node_name(node_names) if on_gpu else ""
    allocation_id = allocation.allocation_id if allocation is not None else ""
    return PlanSource(plan, node, allocation_id, allocation is not None and on_gpu, notes)
