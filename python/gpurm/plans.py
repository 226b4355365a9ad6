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
import shutil
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from .allocation import Allocation
from .config import TrainingGPUConfig, this_node_name
from .errors import GpuRmUnavailable
from .manager import GPUResourceManager

TENSORFLOW = "tensorflow"
PYTORCH = "pytorch"

#: Hides every GPU from the CUDA and HIP runtimes.
CPU_ENVIRONMENT = {"CUDA_VISIBLE_DEVICES": "", "HIP_VISIBLE_DEVICES": ""}

#: The CUDA guard's grant per visible device (MiB), set by the daemon in the
#: plan of NVIDIA GPUs; the guard also reads GPURM_ALLOCATION_ID.
CUDA_LIMITS_VARIABLE = "GPURM_CUDA_MEMORY_LIMITS_MB"
#: Names the guard library explicitly (as for ``gpurm run``).
CUDA_GUARD_LIBRARY_VARIABLE = "GPURM_CUDA_GUARD_LIBRARY"
CUDA_GUARD_LIBRARY_NAME = "libgpurm_cuda_guard.so"


def find_cuda_guard_library() -> Optional[str]:
    """The CUDA guard library, found as ``gpurm run`` finds it: the file
    $GPURM_CUDA_GUARD_LIBRARY names, else next to the ``gpurm`` binary on PATH,
    else in ../lib/gpurm/ from its directory. None when none exists."""
    named = os.environ.get(CUDA_GUARD_LIBRARY_VARIABLE)
    if named:
        return named if os.path.isfile(named) else None
    binary = shutil.which("gpurm")
    if binary is None:
        return None
    directory = os.path.dirname(os.path.realpath(binary))
    for candidate in (os.path.join(directory, CUDA_GUARD_LIBRARY_NAME),
                      os.path.normpath(os.path.join(directory, "..", "lib", "gpurm", CUDA_GUARD_LIBRARY_NAME))):
        if os.path.isfile(candidate):
            return candidate
    return None


def add_cuda_guard(environment: Dict[str, str], allocation_id: str,
                   library: Optional[str], inherited_preload: str = "") -> List[str]:
    """Completes a plan's environment for the CUDA guard, in place.

    With GPUs held by ``allocation_id`` and the daemon's limits in the
    environment, the guard is preloaded (LD_PRELOAD, before
    ``inherited_preload``) with GPURM_ALLOCATION_ID, so processes started from
    here on are held to the grant per device. Without an allocation (GPUs only
    planned, not reserved) the limits are dropped: there is no grant to hold.
    Returns notes on what could not be done.
    """
    if CUDA_LIMITS_VARIABLE not in environment:
        return []
    if not allocation_id:
        del environment[CUDA_LIMITS_VARIABLE]
        return []
    environment["GPURM_ALLOCATION_ID"] = allocation_id
    if library is None:
        return [f"the CUDA guard ({CUDA_GUARD_LIBRARY_NAME}) was not found next to gpurm or through "
                f"{CUDA_GUARD_LIBRARY_VARIABLE}: processes started from here are not held to the grant"]
    preloads = [p for p in inherited_preload.replace(" ", ":").split(":") if p]
    if library not in preloads:
        preloads.insert(0, library)
    environment["LD_PRELOAD"] = ":".join(preloads)
    return []


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
    """The node this process runs on, among ``node_names``: the one named
    :func:`gpurm.this_node_name` (in full or up to its first dot), else the first."""
    here = this_node_name()
    for name in node_names:
        if name in (here, here.split(".")[0]):
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
    framework initializes its devices) and returns them. LD_PRELOAD (the CUDA
    guard) takes effect in the processes started from here on (torchrun
    workers, subprocesses), not in this one: the dynamic loader reads it when
    a program starts. ``gpurm run`` preloads the guard into the command itself."""
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
    if allocation is not None and on_gpu and answer.get("success", False):
        notes += add_cuda_guard(plan.setdefault("environment", {}), allocation.allocation_id,
                                find_cuda_guard_library(), os.environ.get("LD_PRELOAD", ""))
    else:
        add_cuda_guard(plan.setdefault("environment", {}), "", None)
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
