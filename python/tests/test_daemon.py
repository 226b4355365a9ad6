"""The Python API against the real daemon (build/gpurm serve with examples/cluster-3node.yaml).

The demo cluster: gpu-node-1 has 4 x V100 32 GB (GPU 0 has 8 GB used outside
gpurm), gpu-node-2 has 8 x A100 80 GB, gpu-node-3 has 4 x T4 16 GB.
"""

from __future__ import annotations

import asyncio
import math
import os

import pytest

import gpurm
from conftest import Daemon
from gpurm import TrainingGPUConfig


def test_health_and_status(manager: gpurm.GPUResourceManager) -> None:
    assert manager.is_ready()
    assert manager.health()["ready"] is True
    status = manager.get_cluster_status()
    assert status["total_nodes"] == 3
    assert 0.0 <= status["utilization"]["gpu_utilization"] <= 1.0


def test_available_nodes_have_the_documented_attributes(manager: gpurm.GPUResourceManager) -> None:
    nodes = manager.get_available_gpu_nodes()
    by_type = {n.gpu_type: n for n in nodes}
    assert set(by_type) == {"V100", "A100", "T4"}
    v100 = by_type["V100"]
    assert (v100.node_name, v100.available_gpus, v100.memory_per_gpu) == ("gpu-node-1", 4, 32.0)
    assert 0.0 <= v100.utilization <= 1.0
    filtered = manager.get_available_gpu_nodes(gpu_type="A100", min_memory_gb=70)
    assert [n.node_name for n in filtered] == ["gpu-node-2"]
    assert manager.get_available_gpu_nodes(gpu_type="H100") == []


def test_monitoring_has_per_gpu_samples(manager: gpurm.GPUResourceManager) -> None:
    data = manager.get_gpu_monitoring_data()
    gpus = [g for node in data["nodes"] for g in node["gpus"]]
    assert len(gpus) == 16
    assert {"utilization", "memory_used_gb", "temperature_c", "power_w", "history"} <= set(gpus[0])


def test_monitoring_carries_the_status_utilization_summary(manager: gpurm.GPUResourceManager) -> None:
    """Code written against this API reads the summary with .get() defaults: it must be the real figure."""
    data = manager.get_gpu_monitoring_data()
    gpus = [g for node in data["nodes"] for g in node["gpus"]]
    busy = data.get("utilization", {}).get("gpu_utilization", 0.0)
    assert busy > 0.0  # the demo cluster has busy GPUs
    assert busy == pytest.approx(sum(g["utilization"] for g in gpus) / len(gpus), abs=5e-4)
    memory = data.get("utilization", {}).get("gpu_memory_usage", 0.0)
    assert memory == pytest.approx(sum(g["memory_used_gb"] for g in gpus)
                                   / sum(g["memory_total_gb"] for g in gpus), abs=1e-3)
    # The readings of the static inventory do not change between the calls
    # (the reserved share would, were another test's lease to lapse).
    status = manager.get_cluster_status()["utilization"]
    assert (busy, memory) == (status["gpu_utilization"], status["gpu_memory_usage"])
    assert "gpu_memory_reserved" in data["utilization"]


def test_policies_come_from_the_daemon_which_checks_the_name(manager: gpurm.GPUResourceManager) -> None:
    policies = manager.get_placement_policies()
    assert list(policies)[:2] == ["binpack", "spread"] and len(policies) >= 5
    assert all(policies.values())  # each has a description
    assert manager.get_default_placement_policy() == "binpack"
    for name in policies:  # every listed policy is accepted, also those beyond binpack/spread
        assert manager.validate_gpu_requirements(TrainingGPUConfig(gpu_type="A100", policy=name)), name
    unknown = TrainingGPUConfig(gpu_type="A100", policy="fastest")  # the client keeps no list
    with pytest.raises(gpurm.InvalidRequest) as err:
        manager.validate_gpu_requirements(unknown)
    assert err.value.field == "policy" and "binpack" in err.value.message


def test_validate_explains_what_cannot_fit(manager: gpurm.GPUResourceManager) -> None:
    assert manager.validate_gpu_requirements(TrainingGPUConfig(gpu_count=2, gpu_type="V100", memory_gb=16))
    check = manager.check_gpu_requirements(TrainingGPUConfig(gpu_count=2, gpu_type="H100"))
    assert not check and not check.possible_ever
    assert {r["node_name"] for r in check.reasons} == {"gpu-node-1", "gpu-node-2", "gpu-node-3"}
    assert check.would_fit["gpu_types_available"]["A100"] == 8
    assert not manager.validate_gpu_requirements(TrainingGPUConfig(gpu_count=2, gpu_type="H100"))


def test_allocate_and_cleanup_by_node(manager: gpurm.GPUResourceManager) -> None:
    cfg = TrainingGPUConfig(gpu_count=2, gpu_type="V100", memory_gb=32.0, distributed_training=True)
    node = manager.allocate_gpu_resources(cfg)
    assert node == "gpu-node-1"
    [allocation] = manager.allocations
    assert allocation.gpu_count == 2 and all(g.memory_gb == 32.0 for g in allocation.gpus)
    assert 0 not in allocation.gpu_indices()  # GPU 0 has only 24 GB free
    active = manager.list_allocations()
    assert [a["allocation_id"] for a in active] == [allocation.allocation_id]
    assert active[0]["owner"] == manager.client.owner
    assert manager.cleanup_gpu_resources(node, cfg.gpu_count) is True
    assert allocation.released and manager.allocations == []
    assert manager.get_allocation(allocation.allocation_id)["state"] == "released"
    assert manager.cleanup_gpu_resources(node, cfg.gpu_count) is False


def test_cleanup_releases_allocations_made_by_another_client(manager: gpurm.GPUResourceManager,
                                                             daemon: Daemon) -> None:
    other = gpurm.GPUResourceManager(daemon.url)  # same owner, another process's view
    node = other.allocate_gpu_resources(TrainingGPUConfig(gpu_count=1, gpu_type="T4", lease_ttl_seconds=0))
    assert manager.cleanup_gpu_resources(node, 1) is True
    assert manager.list_allocations() == []


def test_release_by_allocation_id(manager: gpurm.GPUResourceManager) -> None:
    allocation = manager.allocate(TrainingGPUConfig(gpu_type="A100"))
    record = manager.release_allocation(allocation.allocation_id)
    assert record["state"] == "released" and allocation.released
    assert manager.release_allocation(allocation.allocation_id)["state"] == "released"  # idempotent


def test_nothing_fits_returns_none_and_refusal_says_why(manager: gpurm.GPUResourceManager) -> None:
    big = TrainingGPUConfig(gpu_count=3, gpu_type="V100", memory_gb=32.0)
    assert manager.allocate_gpu_resources(big) == "gpu-node-1"
    assert manager.allocate_gpu_resources(TrainingGPUConfig(gpu_type="V100", memory_gb=32.0)) is None
    with pytest.raises(gpurm.AllocationRefused) as err:
        manager.allocate(TrainingGPUConfig(gpu_type="V100", memory_gb=32.0))
    assert err.value.possible_ever and err.value.code == "unschedulable_now"
    assert err.value.reasons and "would_fit" in (err.value.body or {})
    with pytest.raises(gpurm.AllocationRefused) as never:
        manager.allocate(TrainingGPUConfig(gpu_count=9, gpu_type="A100"))
    assert not never.value.possible_ever


def test_allocation_is_a_context_manager(manager: gpurm.GPUResourceManager) -> None:
    with manager.allocate(TrainingGPUConfig(gpu_type="T4")) as allocation:
        assert manager.get_allocation(allocation.allocation_id)["state"] == "active"
    assert manager.get_allocation(allocation.allocation_id)["state"] == "released"

    with pytest.raises(RuntimeError, match="training crashed"):
        with manager.allocate(TrainingGPUConfig(gpu_type="T4")) as crashed:
            raise RuntimeError("training crashed")
    assert manager.get_allocation(crashed.allocation_id)["state"] == "released"


def test_heartbeat_keeps_a_short_lease_alive(manager: gpurm.GPUResourceManager) -> None:
    import time

    with manager.allocate(TrainingGPUConfig(gpu_type="T4", lease_ttl_seconds=3)) as allocation:
        time.sleep(7)  # more than two TTLs; the heartbeat thread renews every second
        record = manager.get_allocation(allocation.allocation_id)
        assert record["state"] == "active" and allocation.lease_lost is None
    assert manager.get_allocation(allocation.allocation_id)["state"] == "released"


def test_daemon_errors_map_to_exceptions(manager: gpurm.GPUResourceManager) -> None:
    with pytest.raises(gpurm.InvalidRequest) as invalid:
        manager.client.allocate({"gpu_count": 0})
    assert invalid.value.field == "gpu_count" and invalid.value.status == 400
    with pytest.raises(gpurm.InvalidRequest) as unknown:
        manager.client.validate({"gpu_count": 1, "gpus": 2})
    assert unknown.value.field == "gpus"
    with pytest.raises(gpurm.NotFound):
        manager.get_allocation("alloc-does-not-exist")
    allocation = manager.allocate(TrainingGPUConfig(gpu_type="T4", lease_ttl_seconds=0))
    allocation.release()
    with pytest.raises(gpurm.Conflict):
        allocation.heartbeat()


def test_pytorch_setup_uses_the_allocated_gpus(manager: gpurm.GPUResourceManager) -> None:
    cfg = TrainingGPUConfig(gpu_count=2, gpu_type="A100", memory_gb=40.0, mixed_precision=True)
    integration = gpurm.get_pytorch_gpu_integration(manager)
    with manager.allocate(cfg) as allocation:
        setup = integration.setup_pytorch_gpu(cfg)  # finds the allocation the manager holds
        assert setup.allocation_id == allocation.allocation_id and setup.reserved
        indices = ",".join(str(i) for i in allocation.gpu_indices())
        assert os.environ["CUDA_VISIBLE_DEVICES"] == indices
        assert os.environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
        # The cap is gpu_memory_fraction x the memory granted (what is free of outside use).
        granted_mb = min(g.memory_gb for g in allocation.gpus) * 1024
        assert granted_mb >= 40 * 1024
        assert setup.plan["memory_limit_mb"] == math.floor(0.9 * granted_mb)
        assert setup.plan["amp"]["enabled"] and setup.plan["amp"]["dtype"] == "bfloat16"  # A100 has bf16
        # This machine has no GPU: PyTorch says so and runs on the CPU.
        assert setup.device == "cpu" and "PyTorch sees none" in (setup.fallback_reason or "")
        model = integration.create_pytorch_model_with_gpu(
            {"type": "mlp", "input_dim": 10, "hidden_units": [128, 64], "output_dim": 1}, cfg)
        assert next(model.parameters()).device.type == "cpu"


def test_tensorflow_setup_without_allocation_uses_the_servers_plan(manager: gpurm.GPUResourceManager) -> None:
    cfg = TrainingGPUConfig(gpu_count=2, gpu_type="V100")
    setup = gpurm.get_tensorflow_gpu_integration(manager).setup_tensorflow_gpu(cfg)
    assert setup.plan["strategy"] == "MirroredStrategy" and setup.plan["physical_device_type"] == "GPU"
    assert not setup.reserved and setup.node_name == "gpu-node-1"
    assert any("not reserved" in w for w in setup.warnings)
    assert os.environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert setup.device == "cpu" and "TensorFlow sees none" in (setup.fallback_reason or "")
    nothing = gpurm.get_tensorflow_gpu_integration(manager).setup_tensorflow_gpu(
        TrainingGPUConfig(gpu_count=2, gpu_type="H100"))
    assert nothing.plan["device"] == "cpu" and "no GPU fits" in (nothing.fallback_reason or "")


def test_engine_allocates_trains_and_releases(manager: gpurm.GPUResourceManager,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """python/README.md: config.algorithm_params["gpu_config"] = {"enabled": True, "gpu_count": 2, ...}."""
    import numpy as np

    monkeypatch.setenv("GPURM_NODE_NAME", "gpu-node-2")  # this process "runs" where the A100s are

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 5))
    data = {"features": x, "labels": (x[:, 0] > 0).astype(int)}
    engine = gpurm.AlgorithmTrainingEngine(manager)
    config = gpurm.TrainingConfig(epochs=3)
    config.algorithm_params["gpu_config"] = {"enabled": True, "gpu_count": 2, "gpu_type": "A100",
                                             "lease_ttl_seconds": 30}
    result = asyncio.run(engine.train_algorithm(gpurm.AlgorithmType.VIBRATION_ANALYSIS, config, data))
    assert result.allocation_id and result.node_name == "gpu-node-2"
    assert manager.get_allocation(result.allocation_id)["state"] == "released"
    assert result.setup["reserved"] and result.device == "cpu"
    assert "sees none" in (result.fallback_reason or "")


def test_engine_releases_when_training_fails(manager: gpurm.GPUResourceManager,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPURM_NODE_NAME", "gpu-node-3")  # where the T4s are
    engine = gpurm.AlgorithmTrainingEngine(manager)
    config = gpurm.TrainingConfig(epochs=1, algorithm_params={"gpu_config": {"enabled": True, "gpu_type": "T4"}})
    bad = {"features": [[0.0, float("nan")], [1.0, 2.0]], "labels": [0, 1]}
    with pytest.raises(gpurm.InvalidRequest):
        asyncio.run(engine.train_algorithm(gpurm.AlgorithmType.VIBRATION_ANALYSIS, config, bad))
    assert manager.list_allocations() == []


def test_engine_no_fit_falls_back_or_refuses_as_asked(manager: gpurm.GPUResourceManager,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    monkeypatch.setenv("GPURM_NODE_NAME", "gpu-node-2")

    data = {"features": np.random.default_rng(1).normal(size=(40, 3)), "labels": [0, 1] * 20}
    engine = gpurm.AlgorithmTrainingEngine(manager)
    impossible = {"enabled": True, "gpu_count": 2, "gpu_type": "H100"}
    config = gpurm.TrainingConfig(epochs=2, algorithm_params={"gpu_config": impossible})
    result = asyncio.run(engine.train_algorithm(gpurm.AlgorithmType.VIBRATION_ANALYSIS, config, data))
    assert result.device == "cpu" and "no GPU fits" in (result.fallback_reason or "")
    assert result.allocation_id == ""
    strict = gpurm.TrainingConfig(epochs=2, algorithm_params={"gpu_config": dict(impossible,
                                                                                 fallback_to_cpu=False)})
    with pytest.raises(gpurm.AllocationRefused) as err:
        asyncio.run(engine.train_algorithm(gpurm.AlgorithmType.VIBRATION_ANALYSIS, strict, data))
    assert not err.value.possible_ever


def _features() -> dict:
    import numpy as np

    x = np.random.default_rng(2).normal(size=(40, 3))
    return {"features": x, "labels": (x[:, 0] > 0).astype(int)}


def test_node_names_include_nodes_without_free_gpus(manager: gpurm.GPUResourceManager) -> None:
    every_t4 = manager.allocate(TrainingGPUConfig(gpu_count=4, gpu_type="T4"))
    try:
        assert "gpu-node-3" not in [n.node_name for n in manager.get_available_gpu_nodes()]
        assert manager.get_node_names() == ["gpu-node-1", "gpu-node-2", "gpu-node-3"]
    finally:
        every_t4.release()


@pytest.mark.parametrize("this_node", ["gpu-node-1", "gpu-node-3"])
def test_engine_asks_for_the_gpus_of_this_machine(manager: gpurm.GPUResourceManager,
                                                  monkeypatch: pytest.MonkeyPatch, this_node: str) -> None:
    """The same request (one GPU of any type) lands on whichever node this machine is."""
    monkeypatch.setenv("GPURM_NODE_NAME", this_node)
    engine = gpurm.AlgorithmTrainingEngine(manager)
    config = gpurm.TrainingConfig(epochs=1, algorithm_params={"gpu_config": {"enabled": True}})
    result = asyncio.run(engine.train_algorithm(gpurm.AlgorithmType.VIBRATION_ANALYSIS, config, _features()))
    assert result.allocation_id and result.node_name == this_node
    assert manager.get_allocation(result.allocation_id)["node_name"] == this_node


def test_engine_keeps_an_explicit_node_name(manager: gpurm.GPUResourceManager,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPURM_NODE_NAME", "gpu-node-1")
    engine = gpurm.AlgorithmTrainingEngine(manager)
    config = gpurm.TrainingConfig(epochs=1, algorithm_params={"gpu_config": {"enabled": True,
                                                                             "node_name": "gpu-node-3"}})
    result = asyncio.run(engine.train_algorithm(gpurm.AlgorithmType.VIBRATION_ANALYSIS, config, _features()))
    assert result.allocation_id and result.node_name == "gpu-node-3"


def test_engine_on_a_machine_the_daemon_does_not_know_allocates_nothing(
        manager: gpurm.GPUResourceManager, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPURM_NODE_NAME", "workstation-7")
    ever_made = len(manager.list_allocations(include_ended=True))
    engine = gpurm.AlgorithmTrainingEngine(manager)
    gpu_config = {"enabled": True, "gpu_count": 1}
    config = gpurm.TrainingConfig(epochs=1, algorithm_params={"gpu_config": gpu_config})
    result = asyncio.run(engine.train_algorithm(gpurm.AlgorithmType.VIBRATION_ANALYSIS, config, _features()))
    assert result.device == "cpu" and result.allocation_id == "" and not result.used_gpu
    reason = result.fallback_reason or ""
    assert "this machine is node 'workstation-7'" in reason, reason
    assert f"daemon at {manager.url}" in reason and "gpu-node-1, gpu-node-2, gpu-node-3" in reason, reason
    assert "GPURM_NODE_NAME" in reason, reason
    assert len(manager.list_allocations(include_ended=True)) == ever_made  # none, not even released

    strict = gpurm.TrainingConfig(epochs=1, algorithm_params={"gpu_config": dict(gpu_config,
                                                                                 fallback_to_cpu=False)})
    with pytest.raises(gpurm.AllocationRefused) as err:
        asyncio.run(engine.train_algorithm(gpurm.AlgorithmType.VIBRATION_ANALYSIS, strict, _features()))
    assert "this machine is node 'workstation-7'" in err.value.message and not err.value.possible_ever
    assert len(manager.list_allocations(include_ended=True)) == ever_made  # none, not even released
