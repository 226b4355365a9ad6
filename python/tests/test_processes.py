"""Client processes that end badly, and python/README.md's API snippet run as written,
each in its own interpreter against the real daemon."""

from __future__ import annotations

import re
import signal
import subprocess
import textwrap
from pathlib import Path

import pytest

import gpurm
from conftest import Daemon
from helpers import REPO, run_python, spawn_python, wait_for

ALLOCATE_AND_WAIT = textwrap.dedent("""
    import sys, time
    from gpurm import get_gpu_resource_manager, TrainingGPUConfig
    m = get_gpu_resource_manager()
    allocation = m.allocate(TrainingGPUConfig(gpu_type="T4", lease_ttl_seconds=int(sys.argv[1])))
    print(allocation.allocation_id, flush=True)
    time.sleep(300)
""")


def _start_holder(daemon: Daemon, ttl: int) -> "tuple[subprocess.Popen[str], str]":
    process = spawn_python(ALLOCATE_AND_WAIT.replace("int(sys.argv[1])", str(ttl)), {"GPURM_URL": daemon.url})
    line = process.stdout.readline().strip() if process.stdout else ""
    if not line.startswith("alloc"):
        process.kill()
        _, err = process.communicate()
        pytest.fail(f"the client did not allocate: {line!r} {err}")
    return process, line


def _state(manager: gpurm.GPUResourceManager, allocation_id: str) -> str:
    return str(manager.get_allocation(allocation_id)["state"])


def test_lease_expires_when_the_client_is_killed(daemon: Daemon, manager: gpurm.GPUResourceManager) -> None:
    process, allocation_id = _start_holder(daemon, ttl=2)
    assert _state(manager, allocation_id) == "active"
    process.send_signal(signal.SIGKILL)  # no handler runs: only the lease can bring the GPU back
    process.wait(timeout=10)
    assert wait_for(lambda: _state(manager, allocation_id) == "expired", timeout=30), \
        f"allocation {allocation_id} still {_state(manager, allocation_id)}"
    assert manager.get_allocation(allocation_id)["ended_at"] is not None


def test_sigterm_releases_before_the_client_dies(daemon: Daemon, manager: gpurm.GPUResourceManager) -> None:
    process, allocation_id = _start_holder(daemon, ttl=0)  # no lease: only the handler can release it
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == -signal.SIGTERM  # dies by the signal, as without gpurm
    assert _state(manager, allocation_id) == "released"


def test_normal_exit_releases_what_was_not_cleaned_up(daemon: Daemon, manager: gpurm.GPUResourceManager) -> None:
    done = run_python(textwrap.dedent("""
        from gpurm import get_gpu_resource_manager, TrainingGPUConfig
        m = get_gpu_resource_manager()
        print(m.allocate(TrainingGPUConfig(gpu_type="T4", lease_ttl_seconds=0)).allocation_id)
    """), {"GPURM_URL": daemon.url})
    assert done.returncode == 0, done.stderr
    assert _state(manager, done.stdout.strip()) == "released"


API_SNIPPET = '''\
from gpurm import get_gpu_resource_manager, TrainingGPUConfig
m = get_gpu_resource_manager()
cfg = TrainingGPUConfig(gpu_count=2, gpu_type="V100", memory_gb=32.0, distributed_training=True)
if m.validate_gpu_requirements(cfg):
    node = m.allocate_gpu_resources(cfg)        # None when nothing fits
    m.cleanup_gpu_resources(node, cfg.gpu_count)
data = m.get_gpu_monitoring_data()   # data["utilization"]["gpu_utilization"], ["gpu_memory_usage"] (ratios 0..1), plus detail
m.get_available_gpu_nodes()          # node.node_name, .gpu_type, .available_gpus, .memory_per_gpu, .utilization
get_tensorflow_gpu_integration().setup_tensorflow_gpu(cfg)
get_tensorflow_gpu_integration().create_tensorflow_model_with_gpu({"type": "mlp", "input_dim": 10, "hidden_units": [128, 64], "output_dim": 1}, cfg)
get_pytorch_gpu_integration().setup_pytorch_gpu(cfg)
get_pytorch_gpu_integration().create_pytorch_model_with_gpu(model_config, cfg)
# training engine (async): await AlgorithmTrainingEngine().train_algorithm(AlgorithmType.VIBRATION_ANALYSIS, config, data)
# where config = TrainingConfig(name="gpu_training_example", algorithm_params={"gpu_config": {"enabled": True, "gpu_count": 2, ...}})
'''

# The names the snippet uses without importing them, and a check of what it did.
PRELUDE = '''\
from gpurm import get_tensorflow_gpu_integration, get_pytorch_gpu_integration
model_config = {"type": "mlp", "input_dim": 10, "hidden_units": [128, 64], "output_dim": 1}
'''
EPILOGUE = '''
import json
print(json.dumps({"node": node, "active": m.list_allocations(), "utilization": data["utilization"],
                  "nodes": [[n.node_name, n.gpu_type, n.available_gpus, n.memory_per_gpu, n.utilization]
                            for n in m.get_available_gpu_nodes()],
                  "tf": get_tensorflow_gpu_integration().last_setup.to_dict(),
                  "torch": get_pytorch_gpu_integration().last_setup.to_dict()}))
'''


def test_snippet_is_the_one_in_the_readme() -> None:
    readme = REPO / "python" / "README.md"
    block = re.search(r"## The API at a glance.*?```python\n(.*?)```", readme.read_text(), re.S)
    assert block is not None
    assert block.group(1) == API_SNIPPET


def test_api_snippet_runs_as_written(daemon: Daemon, manager: gpurm.GPUResourceManager) -> None:
    import json

    done = run_python(PRELUDE + API_SNIPPET + EPILOGUE, {"GPURM_URL": daemon.url}, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["node"] == "gpu-node-1"  # two V100s with 32 GB free each exist there
    assert out["active"] == []  # cleanup_gpu_resources released them
    assert ["gpu-node-1", "V100", 4, 32.0] == out["nodes"][0][:4]
    for ratio in ("gpu_utilization", "gpu_memory_usage"):
        assert 0.0 < out["utilization"][ratio] <= 1.0  # the demo inventory has busy GPUs
    for framework in ("tf", "torch"):  # planned on V100s, but this machine has no GPU
        assert out[framework]["device"] == "cpu" and "sees none" in out[framework]["fallback_reason"]


def test_engine_line_of_the_snippet(daemon: Daemon, manager: gpurm.GPUResourceManager, tmp_path: Path) -> None:
    """The snippet's last comment, as a script: AlgorithmTrainingEngine().train_algorithm(...)."""
    import json

    code = textwrap.dedent("""
        import asyncio, json
        import numpy as np
        from gpurm import AlgorithmTrainingEngine, AlgorithmType, TrainingConfig
        x = np.random.default_rng(0).normal(size=(80, 4)); data = {"features": x, "labels": (x[:, 1] > 0).astype(int)}
        config = TrainingConfig(name="gpu_training_example", epochs=2,
                                algorithm_params={"gpu_config": {"enabled": True, "gpu_count": 2}})
        result = asyncio.run(AlgorithmTrainingEngine().train_algorithm(AlgorithmType.VIBRATION_ANALYSIS, config, data))
        print(json.dumps(result.to_dict()))
    """)
    # The engine asks for the GPUs of the machine it runs on: here, a node of the demo cluster.
    done = run_python(code, {"GPURM_URL": daemon.url, "GPURM_LOG_DIR": str(tmp_path),
                             "GPURM_NODE_NAME": "gpu-node-1"}, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["allocation_id"] and result["loss_curve"]
    assert _state(manager, result["allocation_id"]) == "released"
    log = (tmp_path / "training.log").read_text()
    # Records of the job carry its allocation (concurrent jobs share the file) and its name.
    assert f"alloc={result['allocation_id']} INFO gpurm.training: gpu_training_example: trained" in log, log
