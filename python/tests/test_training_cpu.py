"""The training engine on the CPU (real PyTorch and TensorFlow), and the vibration example end to end."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gpurm
from gpurm.training import vibration_features
from helpers import REPO, load_example


@pytest.fixture(scope="module")
def vibration() -> dict:
    example = load_example("vibration_training")
    signals, labels, severity = example.make_dataset(windows_per_class=60, seed=3)
    return {"signals": signals, "labels": labels, "severity": severity, "sample_rate": example.SAMPLE_RATE,
            "fault_frequencies": {k: v * example.SHAFT_HZ for k, v in example.FAULT_ORDERS.items()}}


def _config(vibration: dict, framework: str, **params: object) -> gpurm.TrainingConfig:
    return gpurm.TrainingConfig(framework=framework, epochs=15, learning_rate=3e-3, algorithm_params={
        "sample_rate": vibration["sample_rate"], "fault_frequencies": vibration["fault_frequencies"], **params})


@pytest.mark.parametrize("framework", ["pytorch", "tensorflow"])
def test_engine_trains_a_fault_classifier_on_the_cpu(vibration: dict, framework: str, unreachable_url: str,
                                                     tmp_path: Path) -> None:
    engine = gpurm.AlgorithmTrainingEngine(gpurm.GPUResourceManager(unreachable_url), log_dir=str(tmp_path))
    config = _config(vibration, framework)
    data = {"signals": vibration["signals"], "labels": vibration["labels"]}
    result = asyncio.run(engine.train_algorithm(gpurm.AlgorithmType.VIBRATION_ANALYSIS, config, data))
    assert result.framework == framework and result.device == "cpu" and not result.used_gpu
    assert "not requested" in (result.fallback_reason or "")
    assert result.num_classes == 4 and result.num_samples == 240
    assert len(result.loss_curve) == len(result.val_loss_curve) == 15
    assert result.loss_curve[-1] < result.loss_curve[0]
    assert result.accuracy is not None and result.accuracy > 0.8
    assert result.training_time_seconds > 0
    log_text = (tmp_path / "training.log").read_text()
    assert "training: trained vibration_analysis on cpu" in log_text  # "training": the default name


def test_engine_names_the_job_in_its_result_and_log(unreachable_url: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 4))
    y = (x[:, 0] > 0).astype(int)
    engine = gpurm.AlgorithmTrainingEngine(gpurm.GPUResourceManager(unreachable_url), log_dir=str(tmp_path))
    config = gpurm.TrainingConfig(name="gpu_training_example", epochs=1,
                                  algorithm_params={"gpu_config": {"enabled": True, "gpu_count": 2}})
    result = asyncio.run(engine.train_algorithm(gpurm.AlgorithmType.VIBRATION_ANALYSIS, config,
                                                {"features": x, "labels": y}))
    assert result.name == "gpu_training_example" and result.to_dict()["name"] == "gpu_training_example"
    log_lines = (tmp_path / "training.log").read_text().splitlines()
    assert any("gpu_training_example: training on the CPU: gpurm daemon unavailable" in line
               for line in log_lines)
    assert any("gpu_training_example: trained vibration_analysis on cpu" in line for line in log_lines)


def test_engine_falls_back_to_cpu_when_the_daemon_is_unreachable(vibration: dict, unreachable_url: str) -> None:
    engine = gpurm.AlgorithmTrainingEngine(gpurm.GPUResourceManager(unreachable_url))
    config = _config(vibration, "pytorch", gpu_config={"enabled": True, "gpu_count": 2, "fallback_to_cpu": False})
    data = {"signals": vibration["signals"], "labels": vibration["labels"]}
    result = asyncio.run(engine.train_algorithm(gpurm.AlgorithmType.VIBRATION_ANALYSIS, config, data))
    assert result.device == "cpu" and result.allocation_id == ""
    assert "gpurm daemon unavailable" in (result.fallback_reason or "")


def test_engine_regresses_severity(vibration: dict, unreachable_url: str) -> None:
    engine = gpurm.AlgorithmTrainingEngine(gpurm.GPUResourceManager(unreachable_url))
    config = _config(vibration, "pytorch", task="regression")
    data = {"signals": vibration["signals"], "labels": vibration["severity"]}
    result = asyncio.run(engine.train_algorithm(gpurm.AlgorithmType.VIBRATION_ANALYSIS, config, data))
    assert result.task == "regression" and result.accuracy is None
    assert result.mae is not None and result.mae < 0.2  # severity spans 0..1


def test_engine_accepts_ready_features(unreachable_url: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    engine = gpurm.AlgorithmTrainingEngine(gpurm.GPUResourceManager(unreachable_url))
    config = gpurm.TrainingConfig(epochs=10, validation_split=0.0)
    result = asyncio.run(engine.train_algorithm(gpurm.AlgorithmType.VIBRATION_ANALYSIS, config,
                                                {"features": x, "labels": y}))
    assert result.val_loss_curve == [] and result.accuracy == result.train_accuracy
    assert result.accuracy is not None and result.accuracy > 0.9


@pytest.mark.parametrize("kwargs, field", [
    ({"framework": "jax"}, "framework"), ({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch_size"),
    ({"learning_rate": 0}, "learning_rate"), ({"validation_split": 1.0}, "validation_split"),
    ({"algorithm_params": {"task": "ranking"}}, "task"),
    ({"algorithm_params": {"gpu_config": [1]}}, "gpu_config"),
    ({"name": ""}, "name"), ({"name": 7}, "name"),
])
def test_invalid_training_config(kwargs: dict, field: str) -> None:
    with pytest.raises(gpurm.InvalidRequest) as err:
        gpurm.TrainingConfig(**kwargs)
    assert err.value.field == field


def test_invalid_data_is_rejected(unreachable_url: str) -> None:
    engine = gpurm.AlgorithmTrainingEngine(gpurm.GPUResourceManager(unreachable_url))
    config = gpurm.TrainingConfig(epochs=1)
    for data, field in [({"signals": np.zeros((4, 64)), "labels": [0, 1, 0, 1]}, "sample_rate"),
                        ({"features": np.zeros((4, 3)), "labels": [0, 1]}, "labels"),
                        ({"labels": [0, 1]}, "data")]:
        with pytest.raises(gpurm.InvalidRequest) as err:
            asyncio.run(engine.train_algorithm(gpurm.AlgorithmType.VIBRATION_ANALYSIS, config, data))
        assert err.value.field == field


def test_vibration_features_find_the_fault_frequency() -> None:
    """An outer-race fault's impacts show up in the envelope spectrum at BPFO, not at BPFI."""
    example = load_example("vibration_training")
    signals, labels, _ = example.make_dataset(windows_per_class=10, seed=1)
    freqs = {"bpfi": example.FAULT_ORDERS["bpfi"] * example.SHAFT_HZ,
             "bpfo": example.FAULT_ORDERS["bpfo"] * example.SHAFT_HZ}
    features = vibration_features(signals, example.SAMPLE_RATE, freqs)
    assert features.shape == (40, 10 + 8 + 4)
    assert np.isfinite(features).all()
    bpfi, bpfo = features[:, -4], features[:, -2]  # sorted names: bpfi (x1, x2), bpfo (x1, x2)
    outer = labels == "outer_race"
    assert bpfo[outer].mean() > 2 * bpfo[labels == "normal"].mean()
    assert bpfo[outer].mean() > bpfi[outer].mean()


def test_vibration_example_runs_end_to_end_on_the_cpu(unreachable_url: str, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(REPO / "examples" / "vibration_training.py"), "--url",
                           unreachable_url, "--epochs", "10", "--windows-per-class", "50"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "GPURM_LOG_DIR": str(tmp_path / "logs")})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["device"] == "cpu" and result["algorithm_type"] == "vibration_analysis"
    assert "gpurm daemon unavailable" in result["fallback_reason"]
    assert result["accuracy"] > 0.8
    assert "trained on cpu (CPU fallback" in done.stderr
    assert "CPU fallback" in (tmp_path / "logs" / "training.log").read_text()


def test_out_of_memory_errors_carry_the_plans_advice(unreachable_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A device OOM during training becomes TrainingOutOfMemory with the plan's
    oom_advice (smaller batch, mixed precision, gradient accumulation)."""
    import torch

    from gpurm import training

    def run_out_of_memory(*args: object) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(training, "_train_pytorch", run_out_of_memory)
    monkeypatch.setattr(training, "cpu_plan", lambda framework, reason: {
        "device": "cpu", "oom_advice": ["reduce the batch size", "use gradient accumulation"]})
    engine = gpurm.AlgorithmTrainingEngine(gpurm.GPUResourceManager(unreachable_url))
    with pytest.raises(gpurm.TrainingOutOfMemory) as err:
        asyncio.run(engine.train_algorithm(gpurm.AlgorithmType.VIBRATION_ANALYSIS, gpurm.TrainingConfig(epochs=1),
                                           {"features": np.zeros((4, 2)), "labels": [0, 1, 0, 1]}))
    assert err.value.advice == ["reduce the batch size", "use gradient accumulation"]
    assert "Tried to allocate" in str(err.value) and "gradient accumulation" in str(err.value)


def test_training_log_defaults_to_the_users_state_directory(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    from gpurm.training import default_log_dir

    monkeypatch.delenv("GPURM_LOG_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_log_dir() == str(tmp_path / "state" / "gpurm" / "logs")
    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_log_dir() == str(tmp_path / "home" / ".local" / "state" / "gpurm" / "logs")
    monkeypatch.setenv("GPURM_LOG_DIR", str(tmp_path / "configured"))
    assert default_log_dir() == str(tmp_path / "configured")
