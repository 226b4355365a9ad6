"""PyTorch on the GPUs gpurm planned: :func:`get_pytorch_gpu_integration`.

torch is imported inside the methods, never when gpurm is imported. The
visible-device variables take effect only if CUDA is not initialized yet, so
:meth:`PyTorchGPUIntegration.setup_pytorch_gpu` belongs before the first CUDA
call of the process. Distributed training expects the process to be started
by torchrun (``gpurm run --distributed`` does that): the process group is then
initialized from torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, ...).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ContextManager, Dict, List, Mapping, Optional, Tuple

from .allocation import Allocation
from .config import TrainingGPUConfig, as_config
from .manager import ConfigLike, GPUResourceManager
from .models import MlpSpec
from .integration_base import FrameworkIntegration, ProcessWide
from .plans import PYTORCH, PlanSource, export_environment, obtain_plan

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

log = logging.getLogger("gpurm")


@dataclass
class PyTorchSetup:
    """What :meth:`PyTorchGPUIntegration.setup_pytorch_gpu` applied.

    Attributes:
        device: the torch device string models and tensors go to ("cuda:0", "cpu", ...).
        on_gpu: True when ``device`` is an accelerator.
        fallback_reason: why it runs on the CPU (None on a GPU).
        per_process_memory_fraction: the cap applied to the device (None: none).
        memory_limit_mb: the memory the cap corresponds to (None on the CPU).
        amp_enabled, amp_dtype, grad_scaler: automatic mixed precision settings;
            use :meth:`autocast` and :meth:`make_grad_scaler`.
        distributed: True when a torch.distributed process group is initialized.
        backend, rank, local_rank, world_size: the process group's settings
            (backend "" and world_size 1 when not distributed).
        environment: the variables set in ``os.environ``.
        node_name, allocation_id, reserved: where the plan came from.
        batch_size_estimate: the daemon's estimate per device, if any.
        warnings: everything worth knowing that did not stop the setup.
        plan: the plan as received.
    """

    device: str
    on_gpu: bool
    fallback_reason: Optional[str]
    per_process_memory_fraction: Optional[float]
    memory_limit_mb: Optional[int]
    amp_enabled: bool
    amp_dtype: str
    grad_scaler: bool
    distributed: bool
    backend: str
    rank: int
    local_rank: int
    world_size: int
    environment: Dict[str, str]
    node_name: str
    allocation_id: str
    reserved: bool
    batch_size_estimate: Optional[int]
    warnings: List[str]
    plan: Dict[str, Any] = field(repr=False)

    @property
    def torch_device(self) -> "torch.device":
        import torch

        return torch.device(self.device)

    def autocast(self) -> ContextManager[Any]:
        """``torch.autocast`` for this device and AMP dtype (disabled when AMP is off)."""
        import torch

        dtype = getattr(torch, self.amp_dtype) if self.amp_enabled else None
        context: ContextManager[Any] = torch.autocast(device_type=self.device.split(":")[0], dtype=dtype,
                                                      enabled=self.amp_enabled)
        return context

    def make_grad_scaler(self) -> Any:
        """A ``torch.cuda.amp.GradScaler``, enabled when the plan asks for loss
        scaling (float16 AMP on CUDA); a disabled one passes values through."""
        import torch

        enabled = self.grad_scaler and self.device.startswith("cuda")
        return torch.cuda.amp.GradScaler(enabled=enabled)

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-serializable summary (without the raw plan)."""
        return {
            "framework": "pytorch", "device": self.device, "on_gpu": self.on_gpu,
            "fallback_reason": self.fallback_reason,
            "per_process_memory_fraction": self.per_process_memory_fraction,
            "memory_limit_mb": self.memory_limit_mb, "amp_enabled": self.amp_enabled,
            "amp_dtype": self.amp_dtype, "grad_scaler": self.grad_scaler, "distributed": self.distributed,
            "backend": self.backend, "rank": self.rank, "local_rank": self.local_rank,
            "world_size": self.world_size, "environment": dict(self.environment), "node_name": self.node_name,
            "allocation_id": self.allocation_id, "reserved": self.reserved,
            "batch_size_estimate": self.batch_size_estimate, "warnings": list(self.warnings),
        }


class PyTorchGPUIntegration(FrameworkIntegration[PyTorchSetup]):
    """Configures PyTorch for a gpurm plan and builds models on it."""

    def setup_pytorch_gpu(self, cfg: ConfigLike = None, allocation: Optional[Allocation] = None) -> PyTorchSetup:
        """Applies the plan for ``cfg`` and returns what was applied.

        The plan covers ``allocation``'s GPUs when given (or the newest
        allocation the manager holds for an equal config), else what the request
        would get now (not reserved). Sets the plan's environment
        (CUDA_VISIBLE_DEVICES with CUDA_DEVICE_ORDER=PCI_BUS_ID, NCCL settings),
        selects the device of this process (LOCAL_RANK under torchrun), caps its
        memory with ``set_per_process_memory_fraction`` to ``gpu_memory_fraction``
        x the granted memory, records the AMP dtype and loss scaling, and, when
        the job is distributed and started by torchrun, initializes the process
        group with the plan's backend (gloo on the CPU). Falls back to the CPU,
        saying so in ``fallback_reason`` and the log, when no GPU is planned or
        PyTorch sees none.
        """
        config = as_config(cfg)
        return self.apply_plan(obtain_plan(self.manager, PYTORCH, config, allocation), config)

    def apply_plan(self, source: PlanSource, config: TrainingGPUConfig) -> PyTorchSetup:
        """Applies a plan obtained elsewhere (e.g. :func:`gpurm.plans.cpu_plan`
        wrapped in a PlanSource) as :meth:`setup_pytorch_gpu` would, and
        remembers it as the setup for ``config``."""
        plan = source.plan
        warnings = list(source.notes)
        environment = export_environment(plan)

        import torch

        planned = str(plan.get("device", "cpu"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        fallback: Optional[str] = None
        if planned == "cpu":
            fallback = warnings[0] if warnings else "the plan is for the CPU"
        else:
            count = _device_count(torch, planned)
            if count == 0:
                fallback = (f"the plan is for {len(plan.get('visible_devices') or [])} {planned} device(s) "
                            f"but PyTorch sees none (CPU-only build or no driver): running on the CPU")
        fraction: Optional[float] = None
        memory_limit = plan.get("memory_limit_mb")
        amp: Mapping[str, Any] = plan.get("amp") or {}
        if fallback is None:
            index = local_rank % count
            device = f"{planned}:{index}"
            backend_module = getattr(torch, planned)
            backend_module.set_device(index)
            fraction, note = _apply_memory_cap(backend_module, index, plan)
            if note:
                warnings.append(note)
            amp_enabled, amp_dtype = bool(amp.get("enabled")), str(amp.get("dtype", "float32"))
            grad_scaler = bool(amp.get("grad_scaler"))
        else:
            device = "cpu"
            memory_limit = None
            amp_enabled, amp_dtype, grad_scaler = False, "float32", False
            if amp.get("enabled"):
                warnings.append("mixed precision is off on the CPU")
            log.warning("PyTorch falls back to the CPU: %s", fallback)
        distributed, backend, rank, world_size = _init_distributed(
            plan.get("distributed") or {}, on_gpu=fallback is None, warnings=warnings,
            requested=config.distributed_training)
        setup = PyTorchSetup(
            device=device, on_gpu=fallback is None, fallback_reason=fallback,
            per_process_memory_fraction=fraction,
            memory_limit_mb=int(memory_limit) if memory_limit else None,
            amp_enabled=amp_enabled, amp_dtype=amp_dtype, grad_scaler=grad_scaler,
            distributed=distributed, backend=backend, rank=rank, local_rank=local_rank if distributed else 0,
            world_size=world_size, environment=environment, node_name=source.node_name,
            allocation_id=source.allocation_id, reserved=source.reserved,
            batch_size_estimate=plan.get("batch_size_estimate"), warnings=warnings, plan=plan,
        )
        if setup.on_gpu:
            log.info("PyTorch on %s (memory fraction %s, AMP %s, allocation %s)", device, fraction,
                     amp_dtype if amp_enabled else "off", setup.allocation_id or "none: not reserved")
        for warning in warnings:
            if warning != fallback:
                log.info("PyTorch setup: %s", warning)
        self._remember(setup, config)
        return setup

    def create_pytorch_model_with_gpu(self, model_config: Mapping[str, Any], cfg: ConfigLike = None,
                                      allocation: Optional[Allocation] = None) -> "torch.nn.Module":
        """Builds the MLP of ``model_config`` (see :class:`gpurm.models.MlpSpec`)
        as a ``torch.nn.Sequential`` on the setup's device, wrapped in
        ``DistributedDataParallel`` when a process group is initialized; runs
        :meth:`setup_pytorch_gpu` first unless it already ran for an equal
        config. The module carries the setup as ``module.gpurm_setup``."""
        spec = MlpSpec.from_config(model_config)
        config = as_config(cfg)
        setup = self._setup_to_reuse(config, allocation)
        if setup is None:
            setup = self.setup_pytorch_gpu(config, allocation)

        from torch import nn

        activations = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU,
                       "elu": nn.ELU, "selu": nn.SELU, "silu": nn.SiLU}
        layers: List[nn.Module] = []
        sizes: Tuple[int, ...] = spec.layer_sizes()
        for width_in, width_out in zip(sizes[:-2], sizes[1:-1]):
            layers.append(nn.Linear(width_in, width_out))
            layers.append(activations[spec.activation]())
            if spec.dropout > 0:
                layers.append(nn.Dropout(spec.dropout))
        layers.append(nn.Linear(sizes[-2], sizes[-1]))
        if spec.output_activation == "softmax":
            layers.append(nn.Softmax(dim=-1))
        elif spec.output_activation == "sigmoid":
            layers.append(nn.Sigmoid())
        model: nn.Module = nn.Sequential(*layers).to(setup.torch_device)
        if setup.distributed:
            device_ids = [setup.torch_device.index] if setup.on_gpu else None
            model = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
        setattr(model, "gpurm_setup", setup)  # nn.Module's typed __setattr__ only takes tensors/modules
        return model


def _device_count(torch: Any, device_type: str) -> int:
    backend = getattr(torch, device_type, None)
    if backend is None or not hasattr(backend, "is_available"):
        return 0
    try:
        return int(backend.device_count()) if backend.is_available() else 0
    except RuntimeError:
        return 0


def _apply_memory_cap(backend: Any, index: int, plan: Mapping[str, Any]) -> Tuple[Optional[float], Optional[str]]:
    """Caps the device's memory; returns (fraction applied, note when not applied)."""
    fraction = plan.get("per_process_memory_fraction")
    limit_mb = plan.get("memory_limit_mb")
    if fraction is None and limit_mb:
        total_mb = backend.get_device_properties(index).total_memory / (1024 * 1024)
        fraction = min(1.0, float(limit_mb) / total_mb)
    if fraction is None:
        return None, None
    if not hasattr(backend, "set_per_process_memory_fraction"):
        return None, "this PyTorch build cannot cap device memory (no set_per_process_memory_fraction)"
    backend.set_per_process_memory_fraction(float(fraction), index)
    return float(fraction), None


def _init_distributed(distributed: Mapping[str, Any], *, on_gpu: bool, warnings: List[str],
                      requested: bool) -> Tuple[bool, str, int, int]:
    """Initializes the process group when the plan is distributed and torchrun
    started this process; returns (initialized, backend, rank, world_size).
    ``requested``: the config asked for distributed training (a plan for
    several GPUs is distributed without it)."""
    import torch.distributed as dist

    if not distributed.get("enabled"):
        return False, "", 0, 1
    if not dist.is_available():
        warnings.append("this PyTorch build has no torch.distributed: running one process")
        return False, "", 0, 1
    if dist.is_initialized():
        return True, str(dist.get_backend()), dist.get_rank(), dist.get_world_size()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size < 2:
        launcher = " ".join(str(a) for a in distributed.get("torchrun_args") or [])
        planned = distributed.get("world_size", "?")
        if requested:
            warnings.append(
                f"distributed training planned for {planned} process(es) but this process was not "
                f"started by torchrun (WORLD_SIZE unset): running one process; launch with "
                f"`gpurm run --distributed` or `torchrun {launcher} ...`")
        else:
            warnings.append(
                f"{planned} GPUs allocated but distributed_training is off: this one process uses "
                f"one of them; to use all, set distributed_training=True and launch with "
                f"`gpurm run --distributed` (or torchrun {launcher} ...)")
        return False, "", 0, 1
    backend = str(distributed.get("backend") or "nccl") if on_gpu else "gloo"
    for key, value in (distributed.get("environment") or {}).items():
        os.environ.setdefault(str(key), str(value))
    dist.init_process_group(backend=backend)
    return True, backend, dist.get_rank(), dist.get_world_size()


_process_wide: ProcessWide[PyTorchGPUIntegration] = ProcessWide(PyTorchGPUIntegration)


def get_pytorch_gpu_integration(manager: Optional[GPUResourceManager] = None) -> PyTorchGPUIntegration:
    """The process-wide PyTorch integration (for ``manager`` when given,
    else for :func:`gpurm.get_gpu_resource_manager`)."""
    return _process_wide.get(manager)
