"""Real TensorFlow and real PyTorch on this CPU-only machine: CPU fallback
without a daemon, models from config dicts, and how the daemon's plans for
allocated GPUs are fetched and applied (against the real daemon)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import gpurm
from gpurm.plans import PYTORCH, TENSORFLOW

MODEL = {"type": "mlp", "input_dim": 10, "hidden_units": [128, 64], "output_dim": 1}

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


def test_the_daemons_plan_for_an_allocation_is_applied_then_falls_back_when_no_gpu_is_seen(
        manager: gpurm.GPUResourceManager) -> None:
    """The plan for allocated GPUs comes from the daemon and is applied
    (visible devices in PCI order); since this machine has no GPU the
    frameworks then say so and use the CPU."""
    cfg = gpurm.TrainingGPUConfig(gpu_count=2, gpu_type="V100", memory_gb=16.0, mixed_precision=True)
    with manager.allocate(cfg) as allocation:
        indices = ",".join(str(i) for i in allocation.gpu_indices())
        torch_plan = manager.client.allocation_plan(allocation.allocation_id, PYTORCH)["plan"]
        assert torch_plan["device"] == "cuda" and torch_plan["visible_devices"] == allocation.gpu_indices()
        assert torch_plan["amp"] == {"enabled": True, "dtype": "float16", "grad_scaler": True}
        setup = gpurm.PyTorchGPUIntegration(manager).setup_pytorch_gpu(cfg, allocation)
        # The daemon's plan as answered, its environment completed for the CUDA guard.
        applied, answered = dict(setup.plan), dict(torch_plan)
        environment, answered_environment = applied.pop("environment"), answered.pop("environment")
        assert applied == answered
        assert {k: environment[k] for k in answered_environment} == answered_environment
        assert environment["GPURM_ALLOCATION_ID"] == allocation.allocation_id
        assert os.environ["CUDA_VISIBLE_DEVICES"] == indices
        assert os.environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
        assert setup.device == "cpu" and "PyTorch sees none" in (setup.fallback_reason or "")
        assert setup.allocation_id == allocation.allocation_id and setup.reserved
        assert setup.node_name == "gpu-node-1"
        assert not setup.amp_enabled and "mixed precision is off on the CPU" in setup.warnings
        # Two GPUs without distributed_training: no claim that distributed training was planned.
        assert not any("distributed training planned" in w for w in setup.warnings), setup.warnings

        tf_setup = gpurm.TensorFlowGPUIntegration(manager).setup_tensorflow_gpu(cfg, allocation)
        tf_plan = tf_setup.plan
        assert (tf_plan["strategy"], tf_plan["mixed_precision_policy"]) == ("MirroredStrategy", "mixed_float16")
        assert 0.9 * 16 * 1024 <= tf_plan["memory_limit_mb"] <= 0.9 * 32 * 1024  # fraction x granted memory
        assert tf_setup.device == "cpu" and "TensorFlow sees none" in (tf_setup.fallback_reason or "")
        assert tf_setup.mixed_precision_policy == "float32"
    with pytest.raises(gpurm.Conflict):  # a released allocation holds no GPUs to plan for
        gpurm.PyTorchGPUIntegration(manager).setup_pytorch_gpu(cfg, allocation)


def test_each_node_of_a_multi_node_allocation_applies_its_part(manager: gpurm.GPUResourceManager,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """4 V100s on gpu-node-1 and 4 T4s on gpu-node-3: the process on gpu-node-3
    gets that node's devices and TF_CONFIG task."""
    cfg = gpurm.TrainingGPUConfig(gpu_count=8, gpu_type="V100|T4", distributed_training=True)
    with manager.allocate(cfg) as allocation:
        assert allocation.nodes == ["gpu-node-1", "gpu-node-3"]
        monkeypatch.setenv("GPURM_NODE_NAME", "gpu-node-3")
        setup = gpurm.TensorFlowGPUIntegration(manager).setup_tensorflow_gpu(cfg, allocation)
        assert setup.node_name == "gpu-node-3"
        assert setup.plan["strategy"] == "MultiWorkerMirroredStrategy"
        node3 = [g.gpu_index for g in allocation.gpus if g.node_name == "gpu-node-3"]
        assert setup.plan["visible_devices"] == node3
        tf_config = json.loads(os.environ["TF_CONFIG"])
        assert tf_config["task"] == {"type": "worker", "index": 1}
        assert len(tf_config["cluster"]["worker"]) == 2


def test_invalid_model_config_is_rejected_before_building(unreachable_url: str) -> None:
    integration = gpurm.PyTorchGPUIntegration(gpurm.GPUResourceManager(unreachable_url))
    with pytest.raises(gpurm.InvalidRequest) as err:
        integration.create_pytorch_model_with_gpu({"type": "mlp", "input_dim": 10, "hidden_units": "128"})
    assert err.value.field == "hidden_units"
