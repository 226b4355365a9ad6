#!/usr/bin/env python3
"""Trains a bearing-fault classifier on a synthetic vibration dataset under gpurm.

The dataset imitates accelerometer windows from a rolling-element bearing
(6205 geometry, 12 kHz sampling, ~1800 rpm): shaft harmonics plus noise for a
healthy bearing, and for each fault (outer race, inner race, ball) a train of
impacts at the fault's characteristic frequency, each ringing a structural
resonance, with the modulation the fault location causes. The engine extracts
time, spectral and envelope-spectrum features, asks gpurm for a GPU (falling
back to the CPU when none fits or the daemon is not running) and trains an MLP.

    .venv/bin/python examples/vibration_training.py [--framework tensorflow] [--url http://127.0.0.1:8000]

Prints the result as JSON (device, fallback reason, loss curve, accuracy, time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Dict, Tuple

import numpy as np

from gpurm import AlgorithmTrainingEngine, AlgorithmType, TrainingConfig, get_gpu_resource_manager

SAMPLE_RATE = 12_000.0
WINDOW = 2048
SHAFT_HZ = 29.95  # 1797 rpm
# Characteristic frequencies of a 6205 bearing as multiples of the shaft frequency.
FAULT_ORDERS = {"bpfo": 3.5848, "bpfi": 5.4152, "bsf": 2.3568, "ftf": 0.3983}
CLASSES = ("normal", "outer_race", "inner_race", "ball")


def _impacts(t: np.ndarray, rate_hz: float, rng: np.random.Generator, resonance_hz: float,
             amplitude: float) -> np.ndarray:
    """A train of decaying resonance bursts at ``rate_hz`` with 1 % timing jitter (bearing slip)."""
    signal = np.zeros_like(t)
    period = 1.0 / rate_hz
    start = rng.uniform(0, period)
    decay = 1.0 / 900.0
    for hit in np.arange(start, t[-1], period):
        hit += rng.normal(0, 0.01 * period)
        after = t >= hit
        dt = t[after] - hit
        signal[after] += amplitude * np.exp(-dt / decay) * np.sin(2 * np.pi * resonance_hz * dt)
    return signal


def make_dataset(windows_per_class: int = 120, seed: int = 7) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(signals [n, WINDOW], fault labels [n] (names), severity [n] in 0..1 (0 when healthy))."""
    rng = np.random.default_rng(seed)
    t = np.arange(WINDOW) / SAMPLE_RATE
    signals, labels, severities = [], [], []
    for label in CLASSES:
        for _ in range(windows_per_class):
            shaft = SHAFT_HZ * rng.uniform(0.97, 1.03)
            x = (0.30 * np.sin(2 * np.pi * shaft * t + rng.uniform(0, 2 * np.pi))
                 + 0.12 * np.sin(2 * np.pi * 2 * shaft * t + rng.uniform(0, 2 * np.pi))
                 + 0.05 * np.sin(2 * np.pi * 3 * shaft * t + rng.uniform(0, 2 * np.pi)))
            severity = 0.0 if label == "normal" else rng.uniform(0.3, 1.0)
            resonance = rng.uniform(2800, 3400)
            if label == "outer_race":  # fixed defect: constant impact strength
                x += _impacts(t, FAULT_ORDERS["bpfo"] * shaft, rng, resonance, 2.0 * severity)
            elif label == "inner_race":  # defect rotates through the load zone: shaft-rate modulation
                x += (_impacts(t, FAULT_ORDERS["bpfi"] * shaft, rng, resonance, 2.0 * severity)
                      * (1 + 0.6 * np.cos(2 * np.pi * shaft * t)))
            elif label == "ball":  # ball spins with the cage: cage-rate modulation
                x += (_impacts(t, 2 * FAULT_ORDERS["bsf"] * shaft, rng, resonance, 1.6 * severity)
                      * (1 + 0.6 * np.cos(2 * np.pi * FAULT_ORDERS["ftf"] * shaft * t)))
            x += rng.normal(0, 0.25, size=WINDOW)
            signals.append(x)
            labels.append(label)
            severities.append(severity)
    return np.asarray(signals), np.asarray(labels), np.asarray(severities)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="gpurm daemon address (default: $GPURM_URL or http://127.0.0.1:8000)")
    parser.add_argument("--framework", choices=("pytorch", "tensorflow"), default="pytorch")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--windows-per-class", type=int, default=120)
    parser.add_argument("--gpus", type=int, default=1, help="GPUs to ask for (0: CPU only)")
    parser.add_argument("--gpu-type", default="", help='e.g. "V100"; empty: any')
    parser.add_argument("--memory-gb", type=float, default=0.0, help="GPU memory needed per GPU")
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--task", choices=("classification", "regression"), default="classification",
                        help="classify the fault, or regress its severity")
    args = parser.parse_args(argv)

    signals, labels, severity = make_dataset(args.windows_per_class)
    gpu_config: Dict[str, object] = {"enabled": args.gpus > 0}
    if args.gpus > 0:
        gpu_config.update(gpu_count=args.gpus, gpu_type=args.gpu_type, memory_gb=args.memory_gb,
                          mixed_precision=args.mixed_precision)
    config = TrainingConfig(
        name="vibration_training", framework=args.framework, epochs=args.epochs, batch_size=32,
        learning_rate=2e-3, hidden_units=[64, 32], dropout=0.1,
        algorithm_params={
            "gpu_config": gpu_config, "task": args.task, "sample_rate": SAMPLE_RATE,
            "fault_frequencies": {name: order * SHAFT_HZ for name, order in FAULT_ORDERS.items()},
        },
    )
    engine = AlgorithmTrainingEngine(get_gpu_resource_manager(args.url))
    data = {"signals": signals, "labels": labels if args.task == "classification" else severity}
    result = asyncio.run(engine.train_algorithm(AlgorithmType.VIBRATION_ANALYSIS, config, data))
    summary = result.to_dict()
    summary["loss_curve"] = [round(v, 4) for v in result.loss_curve]
    summary["val_loss_curve"] = [round(v, 4) for v in result.val_loss_curve]
    print(json.dumps(summary, indent=2))
    print(f"trained on {result.device}" + (f" (CPU fallback: {result.fallback_reason})" if result.fallback_reason
                                            else f" with allocation {result.allocation_id}"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
