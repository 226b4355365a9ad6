"""Real TensorFlow and real PyTorch on this CPU-only machine, without a daemon:
CPU fallback, models from config dicts, and how plans are applied."""

from __future__ import annotations

import os

import numpy as np
import pytest

import gpurm
from gpurm.plans import PYTORCH, TENSORFLOW, PlanSource, plan_from_gpu_config

MODEL = {"type": "mlp", "input_dim": 10, "hidden_units": [128, 64], "output_dim": 1}

# The gpu_config the daemon returns for two V100s on gpu-node-1 (plan.cc's BuildGpuConfig).
GPU_CONFIG = {
    "device": "gpu", "vendor": "nvidia", "gpu_type": "V100", "gpu_count": 2,
    "nodes": [{"node_name": "gpu-node-1", "address": "10.0.0.11", "gpu_indices": [1, 2],
               "gpu_uuids": ["GPU-a", "GPU-b"], "interconnect": "nvlink",
               "environment": {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "1,2",
                               "NCCL_DEBUG": "WARN"}}],
    "environment": {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "1,2", "NCCL_DEBUG": "WARN"},
    "memory_gb_per_gpu": 32.0, "memory_limit_mb": 29491, "gpu_memory_fraction": 0.9,
    "mixed_precision": {"enabled": True, "dtype": "float16", "loss_scaling": True},
    "distributed": {"enabled": True, "backend": "nccl", "collective_library": "nccl", "world_size": 2,
                    "nnodes": 1, "nproc_per_node": 2, "master_addr": "10.0.0.11", "master_port": 29500,
                    "environment": {"NCCL_DEBUG": "WARN"}},
    "batch_size_estimate": 512, "warnings": [],
}


def test_pytorch_falls_back_to_cpu_when_the_daemon_is_unreachable(unreachable_url: str) -> None:
    integration = gpurm.get_pytorch_gpu_integration(gpurm.GPUResourceManager(unreachable_url))
    cfg = gpurm.TrainingGPUConfig(gpu_count=2, mixed_precision=True)
    setup = integration.setup_pytorch_gpu(cfg)
    assert setup.device == "cpu" and not setup.on_gpu
    assert "unavailable" in (setup.fallback_reason or "")
    assert os.environ["CUDA_VISIBLE_DEVICES"] == ""  # GPUs others may hold stay hidden
    assert not setup.amp_enabled and not setup.distributed

    import torch

    model = integration.create_pytorch_model_with_gpu(dict(MODEL, dropout=0.2, activation="tanh"), cfg)
    assert isinstance(model, torch.nn.Sequential)
    assert [type(m).__name__ for m in model] == ["Linear", "Tanh", "Dropout", "Linear", "Tanh", "Dropout",
                                                 "Linear"]
    assert model.gpurm_setup is setup
    out = model(torch.randn(5, 10))
    assert out.shape == (5, 1) and out.device.type == "cpu"


def test_tensorflow_falls_back_to_cpu_when_the_daemon_is_unreachable(unreachable_url: str) -> None:
    integration = gpurm.get_tensorflow_gpu_integration(gpurm.GPUResourceManager(unreachable_url))
    cfg = gpurm.TrainingGPUConfig(mixed_precision=True)
    setup = integration.setup_tensorflow_gpu(cfg)
    assert setup.device == "cpu" and not setup.on_gpu and "unavailable" in (setup.fallback_reason or "")
    assert setup.mixed_precision_policy == "float32" and setup.strategy_name == "default"

    model = integration.create_tensorflow_model_with_gpu(dict(MODEL, dropout=0.1), cfg)
    assert [layer.name for layer in model.layers] == ["features", "dense_0", "dropout_0", "dense_1", "dropout_1",
                                                      "output_dense", "output"]
    assert model.count_params() == 10 * 128 + 128 + 128 * 64 + 64 + 64 + 1
    history = model.fit(np.random.rand(64, 10), np.random.rand(64), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    assert model.predict(np.zeros((3, 10)), verbose=0).shape == (3, 1)


def test_tensorflow_classifier_is_compiled_with_accuracy(unreachable_url: str) -> None:
    integration = gpurm.get_tensorflow_gpu_integration(gpurm.GPUResourceManager(unreachable_url))
    model = integration.create_tensorflow_model_with_gpu(
        {"type": "mlp", "input_dim": 4, "hidden_units": [8], "output_dim": 3, "activation": "gelu"})
    x = np.random.rand(30, 4).astype("float32")
    y = np.random.randint(0, 3, size=30)
    history = model.fit(x, y, epochs=1, verbose=0)
    assert "accuracy" in history.history


def test_a_gpu_plan_sets_visible_devices_then_falls_back_when_no_gpu_is_seen(unreachable_url: str) -> None:
    """The plan for allocated GPUs is applied (visible devices in PCI order), and
    since this machine has no GPU the frameworks say so and use the CPU."""
    manager = gpurm.GPUResourceManager(unreachable_url)
    cfg = gpurm.TrainingGPUConfig(gpu_count=2, mixed_precision=True)

    torch_plan = plan_from_gpu_config(GPU_CONFIG, PYTORCH)
    assert torch_plan["device"] == "cuda" and torch_plan["amp"] == {"enabled": True, "dtype": "float16",
                                                                    "grad_scaler": True}
    setup = gpurm.PyTorchGPUIntegration(manager).apply_plan(PlanSource(torch_plan, "gpu-node-1", "a1", True), cfg)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "1,2"
    assert os.environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert setup.device == "cpu" and "PyTorch sees none" in (setup.fallback_reason or "")
    assert setup.allocation_id == "a1" and setup.reserved
    assert not setup.amp_enabled and "mixed precision is off on the CPU" in setup.warnings
    # Two GPUs without distributed_training: no claim that distributed training was planned.
    assert not any("distributed training planned" in w for w in setup.warnings), setup.warnings
    assert any("distributed_training is off" in w for w in setup.warnings), setup.warnings

    tf_plan = plan_from_gpu_config(GPU_CONFIG, TENSORFLOW)
    assert (tf_plan["strategy"], tf_plan["mixed_precision_policy"], tf_plan["memory_limit_mb"]) == (
        "MirroredStrategy", "mixed_float16", 29491)
    tf_setup = gpurm.TensorFlowGPUIntegration(manager).apply_plan(PlanSource(tf_plan, "gpu-node-1", "a1", True),
                                                                  cfg)
    assert tf_setup.device == "cpu" and "TensorFlow sees none" in (tf_setup.fallback_reason or "")
    assert tf_setup.mixed_precision_policy == "float32"


def test_multi_node_plan_gives_each_node_its_tf_config(monkeypatch: pytest.MonkeyPatch) -> None:
    config = dict(GPU_CONFIG, gpu_count=4, nodes=[
        dict(GPU_CONFIG["nodes"][0]),
        {"node_name": "gpu-node-2", "address": "10.0.0.12", "gpu_indices": [0, 1], "gpu_uuids": ["c", "d"],
         "interconnect": "nvlink", "environment": {"CUDA_DEVICE_ORDER": "PCI_BUS_ID",
                                                   "CUDA_VISIBLE_DEVICES": "0,1"}},
    ])
    monkeypatch.setenv("GPURM_NODE_NAME", "gpu-node-2")
    plan = plan_from_gpu_config(config, TENSORFLOW)
    assert plan["strategy"] == "MultiWorkerMirroredStrategy"
    assert plan["visible_devices"] == [0, 1]
    import json

    assert json.loads(plan["environment"]["TF_CONFIG"]) == {
        "cluster": {"worker": ["10.0.0.11:29500", "10.0.0.12:29500"]}, "task": {"type": "worker", "index": 1}}


def test_invalid_model_config_is_rejected_before_building(unreachable_url: str) -> None:
    integration = gpurm.PyTorchGPUIntegration(gpurm.GPUResourceManager(unreachable_url))
    with pytest.raises(gpurm.InvalidRequest) as err:
        integration.create_pytorch_model_with_gpu({"type": "mlp", "input_dim": 10, "hidden_units": "128"})
    assert err.value.field == "hidden_units"
