"""gpurm: Python client of the gpurm GPU resource manager.

Importing gpurm is cheap: TensorFlow, PyTorch and numpy are imported only
inside the functions that need them.

    from gpurm import get_gpu_resource_manager, TrainingGPUConfig
    m = get_gpu_resource_manager()            # $GPURM_URL or http://127.0.0.1:8000
    cfg = TrainingGPUConfig(gpu_count=2, gpu_type="V100", memory_gb=32.0)
    with m.allocate(cfg) as allocation:       # released on exit, exception or SIGTERM
        setup = get_pytorch_gpu_integration().setup_pytorch_gpu(cfg, allocation)
"""

from .allocation import Allocation, GpuGrant, held_allocations
from .client import GpuRmClient
from .config import DEFAULT_LEASE_TTL_SECONDS, TrainingGPUConfig, this_node_name
from .errors import (AllocationRefused, Conflict, GpuRmError, GpuRmUnavailable, InvalidRequest,
                     LimitExceeded, NotFound, PermissionDenied, Unauthenticated)
from .manager import GpuNode, GPUResourceManager, ValidationResult, get_gpu_resource_manager
from .models import MlpSpec
from .pytorch_integration import PyTorchGPUIntegration, PyTorchSetup, get_pytorch_gpu_integration
from .tensorflow_integration import (TensorFlowGPUIntegration, TensorFlowSetup,
                                     get_tensorflow_gpu_integration)
from .training import (AlgorithmTrainingEngine, AlgorithmType, TrainingConfig, TrainingOutOfMemory,
                       TrainingResult)

__version__ = "0.1.0"

__all__ = [
    "AlgorithmTrainingEngine", "AlgorithmType", "TrainingConfig", "TrainingOutOfMemory", "TrainingResult",
    "Allocation", "AllocationRefused", "Conflict", "DEFAULT_LEASE_TTL_SECONDS", "GPUResourceManager",
    "GpuGrant", "GpuNode", "GpuRmClient", "GpuRmError", "GpuRmUnavailable", "InvalidRequest",
    "LimitExceeded", "MlpSpec", "NotFound", "PermissionDenied", "Unauthenticated", "PyTorchGPUIntegration", "PyTorchSetup", "TensorFlowGPUIntegration", "TensorFlowSetup",
    "TrainingGPUConfig", "ValidationResult", "get_gpu_resource_manager", "get_pytorch_gpu_integration",
    "get_tensorflow_gpu_integration", "held_allocations", "this_node_name",
]
