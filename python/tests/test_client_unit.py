"""The package without a daemon: config validation, addresses, error mapping,
unreachable daemon, and a light import."""

from __future__ import annotations

import json
import socket

import pytest

import gpurm
from gpurm.client import resolve_base_url
from gpurm.errors import error_from_response
from helpers import run_python


def test_defaults_are_the_documented_ones() -> None:
    cfg = gpurm.TrainingGPUConfig()
    assert (cfg.gpu_count, cfg.gpu_type, cfg.memory_gb) == (1, "", 0.0)
    assert (cfg.distributed_training, cfg.mixed_precision, cfg.gpu_memory_fraction) == (False, False, 0.9)
    assert (cfg.node_name, cfg.shared, cfg.policy) == ("", False, "")
    assert cfg.lease_ttl_seconds == gpurm.DEFAULT_LEASE_TTL_SECONDS == 60


def test_request_body_has_the_api_field_names() -> None:
    cfg = gpurm.TrainingGPUConfig(gpu_count=2, gpu_type="V100", memory_gb=32.0, distributed_training=True,
                                  node_name="gpu-node-1", policy="spread", lease_ttl_seconds=0)
    assert cfg.to_request() == {
        "gpu_count": 2, "gpu_type": "V100", "memory_gb": 32.0, "distributed_training": True,
        "mixed_precision": False, "gpu_memory_fraction": 0.9, "shared": False, "lease_ttl_seconds": 0,
        "node_name": "gpu-node-1", "policy": "spread",
    }
    assert "node_name" not in gpurm.TrainingGPUConfig().to_request()


def test_this_node_is_gpurm_node_name_else_the_host_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPURM_NODE_NAME", "gpu-node-7")
    assert gpurm.this_node_name() == "gpu-node-7"
    monkeypatch.setenv("GPURM_NODE_NAME", "")
    assert gpurm.this_node_name() == socket.gethostname()
    monkeypatch.delenv("GPURM_NODE_NAME")
    assert gpurm.this_node_name() == socket.gethostname()


@pytest.mark.parametrize("kwargs, field", [
    ({"gpu_count": 0}, "gpu_count"),
    ({"gpu_count": 1.5}, "gpu_count"),
    ({"gpu_count": True}, "gpu_count"),
    ({"memory_gb": -1.0}, "memory_gb"),
    ({"memory_gb": float("nan")}, "memory_gb"),
    ({"gpu_memory_fraction": 0.0}, "gpu_memory_fraction"),
    ({"gpu_memory_fraction": 1.2}, "gpu_memory_fraction"),
    ({"mixed_precision": "yes"}, "mixed_precision"),
    ({"shared": True}, "shared"),
    ({"lease_ttl_seconds": -1}, "lease_ttl_seconds"),
    ({"policy": 7}, "policy"),
    ({"gpu_type": 100}, "gpu_type"),
])
def test_invalid_config_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(gpurm.InvalidRequest) as err:
        gpurm.TrainingGPUConfig(**kwargs)
    assert err.value.field == field
    assert isinstance(err.value, ValueError)


def test_from_dict_rejects_unknown_keys() -> None:
    assert gpurm.TrainingGPUConfig.from_dict({"gpu_count": 3}).gpu_count == 3
    with pytest.raises(gpurm.InvalidRequest) as err:
        gpurm.TrainingGPUConfig.from_dict({"gpus": 3})
    assert err.value.field == "gpus"


def test_address_from_argument_environment_or_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GPURM_URL", raising=False)
    assert resolve_base_url() == "http://127.0.0.1:8000"
    monkeypatch.setenv("GPURM_URL", "http://gpu-host:9000/api/v1/gpu/")
    assert resolve_base_url() == "http://gpu-host:9000"
    assert resolve_base_url("10.1.2.3:8000") == "http://10.1.2.3:8000"
    assert gpurm.get_gpu_resource_manager().url == "http://gpu-host:9000"
    assert gpurm.get_gpu_resource_manager() is gpurm.get_gpu_resource_manager("http://gpu-host:9000")


def test_error_answers_become_typed_exceptions() -> None:
    refused = error_from_response(409, {
        "success": False,
        "error": {"code": "unschedulable_never", "message": "no node has H100 GPUs", "field": ""},
        "reasons": [{"node_name": "gpu-node-1", "reason": "no H100 GPU"}],
        "would_fit": {"gpu_types_available": {"V100": 4}, "suggestion": "gpu_type=V100"},
    }, "")
    assert isinstance(refused, gpurm.AllocationRefused)
    assert not refused.possible_ever
    assert refused.reasons[0]["node_name"] == "gpu-node-1"
    assert "gpu_type=V100" in str(refused) and "no H100 GPU" in str(refused)
    invalid = error_from_response(400, {"error": {"code": "invalid_argument", "message": "must be >= 1",
                                                  "field": "gpu_count"}}, "")
    assert isinstance(invalid, gpurm.InvalidRequest) and invalid.field == "gpu_count"
    assert isinstance(error_from_response(404, None, "not here"), gpurm.NotFound)
    assert isinstance(error_from_response(409, {"error": {"code": "failed_precondition", "message": "x"}}, ""),
                      gpurm.Conflict)
    unavailable = error_from_response(503, {"status": "unavailable", "ready": False,
                                            "reason": "inventory not loaded"}, "")
    assert isinstance(unavailable, gpurm.GpuRmUnavailable) and "inventory not loaded" in unavailable.message
    internal = error_from_response(500, None, "boom")
    assert type(internal) is gpurm.GpuRmError and internal.status == 500


def test_unreachable_daemon_raises_unavailable(unreachable_url: str) -> None:
    m = gpurm.GPUResourceManager(unreachable_url, timeout=5)
    assert not m.is_ready()
    with pytest.raises(gpurm.GpuRmUnavailable) as err:
        m.validate_gpu_requirements(gpurm.TrainingGPUConfig())
    assert unreachable_url in str(err.value)
    with pytest.raises(gpurm.GpuRmUnavailable):
        m.allocate_gpu_resources(gpurm.TrainingGPUConfig())
    assert m.cleanup_gpu_resources(None, 1) is False


def test_import_is_light() -> None:
    done = run_python("import sys, json, gpurm; "
                      "print(json.dumps([m for m in ('torch', 'tensorflow', 'numpy') if m in sys.modules]))", {})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_mlp_spec_validation() -> None:
    spec = gpurm.MlpSpec.from_config({"type": "mlp", "input_dim": 10, "hidden_units": [128, 64], "output_dim": 1})
    assert spec.layer_sizes() == (10, 128, 64, 1)
    assert (spec.activation, spec.dropout, spec.task) == ("relu", 0.0, "regression")
    assert gpurm.MlpSpec.from_config({"type": "mlp", "input_dim": 4, "output_dim": 3}).task == "classification"
    for bad, field in [({"type": "cnn", "input_dim": 3}, "type"), ({"type": "mlp"}, "input_dim"),
                       ({"type": "mlp", "input_dim": 3, "dropout": 1.0}, "dropout"),
                       ({"type": "mlp", "input_dim": 3, "activation": "swishy"}, "activation"),
                       ({"type": "mlp", "input_dim": 3, "hidden_units": [0]}, "hidden_units"),
                       ({"type": "mlp", "input_dim": 3, "layers": 2}, "layers")]:
        with pytest.raises(gpurm.InvalidRequest) as err:
            gpurm.MlpSpec.from_config(bad)
        assert err.value.field == field


def test_a_row_of_mig_devices_has_no_utilization() -> None:
    from gpurm.manager import GpuNode
    row = GpuNode.from_json({"node_name": "dgx", "gpu_type": "H100 MIG 1g.10gb", "available_gpus": 2,
                             "memory_per_gpu": 9.8, "utilization": None})
    assert (row.gpu_type, row.available_gpus, row.utilization) == ("H100 MIG 1g.10gb", 2, None)
    assert GpuNode.from_json({"utilization": 0.5}).utilization == 0.5


def test_allocation_usage_is_read_from_monitoring() -> None:
    from gpurm.manager import allocation_usage
    monitoring = {"nodes": [{"node_name": "n1", "gpus": [
        {"index": 0, "uuid": "GPU-0",
         "processes": [{"pid": 10, "memory_used_gb": 3.0, "allocation_id": "alloc-a", "class": "over_grant"},
                       {"pid": 11, "memory_used_gb": 1.0, "allocation_id": None, "class": "foreign"}],
         "allocation_usage": [{"allocation_id": "alloc-a", "owner": "alice", "used_gb": 3.0,
                               "granted_gb": 2.0, "over_grant": True}]},
        {"index": 1, "uuid": "GPU-1", "processes": [], "allocation_usage": []}]}]}
    usage = allocation_usage(monitoring, "alloc-a")
    assert len(usage) == 1
    assert (usage[0]["node_name"], usage[0]["gpu_index"], usage[0]["gpu_uuid"]) == ("n1", 0, "GPU-0")
    assert (usage[0]["used_gb"], usage[0]["granted_gb"], usage[0]["over_grant"]) == (3.0, 2.0, True)
    assert [p["pid"] for p in usage[0]["processes"]] == [10]
    assert allocation_usage(monitoring, "alloc-b") == []
    assert allocation_usage({}, "alloc-a") == []
