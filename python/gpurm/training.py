"""The training engine: run a training job under a gpurm allocation.

    engine = AlgorithmTrainingEngine()
    config = TrainingConfig(name="bearing-faults", epochs=20,
                            algorithm_params={"gpu_config": {"enabled": True, "gpu_count": 1}})
    result = await engine.train_algorithm(AlgorithmType.VIBRATION_ANALYSIS, config, data)

``train_algorithm`` validates the GPU request, allocates, configures the
framework for exactly the allocated GPUs, trains an MLP, and releases the
allocation in every case (success, exception, cancellation). When no GPU fits,
the daemon is unreachable, the daemon has no node by this machine's name, or the
framework sees no GPU, it trains on the CPU and says so in
:attr:`TrainingResult.fallback_reason` and training.log (see
:func:`configure_training_log`). The job runs in this process, so it asks for
GPUs on this machine (see :class:`TrainingConfig`).
numpy, torch and tensorflow are imported only when a job runs.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import enum
import logging
import logging.handlers
import math
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .allocation import Allocation
from .config import TrainingGPUConfig, this_node_name
from .errors import AllocationRefused, GpuRmError, GpuRmUnavailable, InvalidRequest
from .manager import GPUResourceManager, get_gpu_resource_manager
from .plans import PYTORCH, TENSORFLOW, PlanSource, cpu_plan, obtain_plan
from .pytorch_integration import PyTorchGPUIntegration, PyTorchSetup
from .tensorflow_integration import TensorFlowGPUIntegration, TensorFlowSetup

if TYPE_CHECKING:  # pragma: no cover - typing only
    import numpy as np

log = logging.getLogger("gpurm.training")

TRAINING_LOG_NAME = "training.log"
_LOG_MAX_BYTES = 10 * 1024 * 1024
_LOG_BACKUPS = 5
FRAMEWORKS = (PYTORCH, TENSORFLOW)
TASKS = ("classification", "regression")


class AlgorithmType(str, enum.Enum):
    """The algorithms the engine trains.

    VIBRATION_ANALYSIS: bearing / machine vibration. Input is either raw
    signals (``data["signals"]``, one row per window, with
    ``data["sample_rate"]`` or ``algorithm_params["sample_rate"]`` in Hz), from
    which time-domain statistics, spectral band energies and envelope-spectrum
    amplitudes at the bearing fault frequencies are extracted, or ready
    ``data["features"]``. Targets ``data["labels"]`` are fault classes
    (classification, the default) or a severity (``task: "regression"``).
    """

    VIBRATION_ANALYSIS = "vibration_analysis"


class TrainingOutOfMemory(GpuRmError):
    """Training ran out of device memory. ``advice`` lists what to try (from the plan)."""

    def __init__(self, message: str, advice: Sequence[str]) -> None:
        super().__init__(message + "".join(f"\n  - {a}" for a in advice), code="resource_exhausted")
        self.advice = list(advice)


@dataclass
class TrainingConfig:
    """How to train.

    Attributes:
        name: what this training job is called, a non-empty string: it starts
            every line the job writes to training.log (see
            :func:`configure_training_log`) and is
            returned as :attr:`TrainingResult.name`. Default "training".
        algorithm_params: algorithm settings. ``"gpu_config"``: a dict with
            ``"enabled"`` (bool, default False: train on the CPU),
            ``"fallback_to_cpu"`` (bool, default True: when no GPU fits, train on
            the CPU instead of raising :class:`gpurm.AllocationRefused`), and any
            :class:`gpurm.TrainingGPUConfig` field (gpu_count, gpu_type,
            memory_gb, mixed_precision, ...). The job runs in this process, so
            unless ``"node_name"`` is given the request is for this machine's
            GPUs (node_name = :func:`gpurm.this_node_name`:
            ``$GPURM_NODE_NAME``, else the host name), and when the daemon has
            no node by that name nothing is allocated: no GPU fits, as above,
            with a reason that names this machine and the daemon's nodes.
            ``"task"``: "classification"
            (default) or "regression". ``"sample_rate"``: Hz of raw signals.
            ``"fault_frequencies"``: {name: Hz} (e.g. bpfo, bpfi, bsf, ftf) whose
            envelope-spectrum amplitudes become features.
        framework: "pytorch" (default) or "tensorflow".
        epochs: passes over the training data, >= 1. Default 20.
        batch_size: samples per step, >= 1. Default 32.
        learning_rate: Adam's learning rate, > 0. Default 1e-3.
        validation_split: share of samples held out for validation, in [0, 1).
            Default 0.2.
        hidden_units: MLP hidden layer widths. Default [64, 32].
        activation: hidden activation (see :mod:`gpurm.models`). Default "relu".
        dropout: dropout after each hidden layer, in [0, 1). Default 0.1.
        seed: random seed for the split, initialization and shuffling. Default 0.
    """

    algorithm_params: Dict[str, Any] = field(default_factory=dict)
    framework: str = PYTORCH
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 1e-3
    validation_split: float = 0.2
    hidden_units: List[int] = field(default_factory=lambda: [64, 32])
    activation: str = "relu"
    dropout: float = 0.1
    seed: int = 0
    name: str = "training"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raises :class:`gpurm.InvalidRequest` naming the first bad field."""
        if not isinstance(self.name, str) or not self.name.strip():
            raise _invalid("name", f"expected a non-empty string, got {self.name!r}")
        if self.framework not in FRAMEWORKS:
            raise _invalid("framework", f"expected one of {', '.join(FRAMEWORKS)}, got {self.framework!r}")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise _invalid(name, f"expected an integer >= 1, got {value!r}")
        if isinstance(self.learning_rate, bool) or not (isinstance(self.learning_rate, (int, float))
                                                        and self.learning_rate > 0):
            raise _invalid("learning_rate", f"expected a number > 0, got {self.learning_rate!r}")
        if not (isinstance(self.validation_split, (int, float)) and 0 <= self.validation_split < 1):
            raise _invalid("validation_split", f"expected a number in [0, 1), got {self.validation_split!r}")
        if not isinstance(self.algorithm_params, dict):
            raise _invalid("algorithm_params", "expected a dict")
        gpu = self.algorithm_params.get("gpu_config", {})
        if not isinstance(gpu, Mapping):
            raise _invalid("gpu_config", f"expected a dict, got {gpu!r}")
        task = self.algorithm_params.get("task", "classification")
        if task not in TASKS:
            raise _invalid("task", f"expected one of {', '.join(TASKS)}, got {task!r}")

    @property
    def task(self) -> str:
        return str(self.algorithm_params.get("task", "classification"))

    def gpu_request(self) -> Tuple[bool, bool, TrainingGPUConfig]:
        """(enabled, fallback_to_cpu, the GPU request) from ``algorithm_params["gpu_config"]``."""
        gpu = dict(self.algorithm_params.get("gpu_config", {}))
        enabled = bool(gpu.pop("enabled", False))
        fallback = bool(gpu.pop("fallback_to_cpu", True))
        return enabled, fallback, TrainingGPUConfig.from_dict(gpu)


@dataclass
class TrainingResult:
    """What a training run produced.

    ``loss_curve``/``val_loss_curve`` hold one value per epoch; ``accuracy`` is
    the validation accuracy of a classifier (training accuracy when there is
    no validation split) and None for regression, where ``mae`` is set.
    ``device`` is the device trained on ("cuda:0", "/device:GPU:0", "cpu", ...);
    ``fallback_reason`` says why it is the CPU when a GPU was asked for.
    ``name`` is the job's :attr:`TrainingConfig.name`.
    """

    name: str
    algorithm_type: str
    framework: str
    task: str
    device: str
    used_gpu: bool
    fallback_reason: Optional[str]
    allocation_id: str
    node_name: str
    gpu_count: int
    epochs: int
    num_samples: int
    num_features: int
    num_classes: int
    loss_curve: List[float]
    val_loss_curve: List[float]
    accuracy: Optional[float]
    train_accuracy: Optional[float]
    mae: Optional[float]
    training_time_seconds: float
    setup: Dict[str, Any]

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


# The allocation the current job runs under, for the records of training.log
# ("-" outside a job or without one). Set by train_algorithm; asyncio.to_thread
# carries it into the worker thread.
_current_allocation: contextvars.ContextVar[str] = contextvars.ContextVar("gpurm_allocation", default="-")


class _AllocationTag(logging.Filter):
    """Gives each record ``allocation``: the id of the job's allocation."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.allocation = _current_allocation.get()
        return True


def default_log_dir() -> str:
    """Where training.log goes unless told: ``$GPURM_LOG_DIR``, else
    ``$XDG_STATE_HOME/gpurm/logs``, else ``~/.local/state/gpurm/logs`` (as
    ``gpurm run``): one place per user, not the working directory."""
    configured = os.environ.get("GPURM_LOG_DIR")
    if configured:
        return configured
    state = os.environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(state):  # XDG: relative values are invalid and ignored
        state = os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "gpurm", "logs")


def configure_training_log(log_dir: Optional[str] = None) -> str:
    """Sends the ``gpurm`` loggers (training, allocations, framework setup) to
    ``<log_dir>/training.log``, rotated at 10 MB with 5 backups, each record
    tagged with the time, the process and the job's allocation id
    (``2026-12-07 06:40:00,123 pid=4242 alloc=alloc-... INFO gpurm.training: ...``).
    ``log_dir`` defaults to :func:`default_log_dir`.
    Idempotent per file; returns the log file's path."""
    directory = log_dir or default_log_dir()
    os.makedirs(directory, exist_ok=True)
    path = os.path.abspath(os.path.join(directory, TRAINING_LOG_NAME))
    root = logging.getLogger("gpurm")
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    for handler in root.handlers:
        if isinstance(handler, logging.handlers.RotatingFileHandler) and handler.baseFilename == path:
            return path
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=_LOG_MAX_BYTES, backupCount=_LOG_BACKUPS,
                                                   encoding="utf-8")
    handler.addFilter(_AllocationTag())
    handler.setFormatter(logging.Formatter(
        "%(asctime)s pid=%(process)d alloc=%(allocation)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    return path


class AlgorithmTrainingEngine:
    """Trains algorithms under gpurm allocations (see the module docstring)."""

    def __init__(self, manager: Optional[GPUResourceManager] = None, log_dir: Optional[str] = None) -> None:
        self.manager = manager or get_gpu_resource_manager()
        self.log_path = configure_training_log(log_dir)

    async def train_algorithm(self, algorithm_type: AlgorithmType, config: TrainingConfig,
                              data: Mapping[str, Any]) -> TrainingResult:
        """Trains ``algorithm_type`` on ``data`` with ``config``; see :class:`TrainingConfig`
        for the GPU settings. The blocking work runs in a worker thread.
        Raises InvalidRequest for bad config or data, AllocationRefused when no
        GPU fits and ``fallback_to_cpu`` is False, TrainingOutOfMemory with advice
        when the device runs out of memory. The allocation is released in every case."""
        algorithm = AlgorithmType(algorithm_type)
        config.validate()
        enabled, fallback_to_cpu, gpu_cfg = config.gpu_request()
        features, labels, class_names = _prepare_data(algorithm, config, data)
        allocation, reason, gpu_cfg = self._allocate(config.name, enabled, fallback_to_cpu, gpu_cfg)
        tag = _current_allocation.set(allocation.allocation_id if allocation else "-")
        try:
            return await asyncio.to_thread(self._train, algorithm, config, gpu_cfg, allocation, reason,
                                           features, labels, class_names)
        finally:
            if allocation is not None:
                allocation.release()
            _current_allocation.reset(tag)

    def _allocate(self, name: str, enabled: bool, fallback_to_cpu: bool,
                  cfg: TrainingGPUConfig) -> Tuple[Optional[Allocation], Optional[str], TrainingGPUConfig]:
        """(the allocation, None, the request) or (None, why the CPU is used, the request).
        The request is ``cfg``, for this machine's GPUs unless it names a node."""
        if not enabled:
            return None, "GPU not requested (algorithm_params['gpu_config']['enabled'] is not true)", cfg
        try:
            if not cfg.node_name:
                cfg = self._on_this_machine(cfg)
            check = self.manager.check_gpu_requirements(cfg)
            if not check.possible_now:
                suggestion = check.would_fit.get("suggestion")
                raise AllocationRefused(check.message + (f"; would fit: {suggestion}" if suggestion else ""),
                                        code="unschedulable_now" if check.possible_ever else "unschedulable_never",
                                        reasons=check.reasons, would_fit=check.would_fit)
            return self.manager.allocate(cfg), None, cfg
        except AllocationRefused as err:
            if not fallback_to_cpu:
                raise
            reason = f"no GPU fits the request: {err.message}"
        except GpuRmUnavailable as err:
            reason = f"gpurm daemon unavailable: {err.message}"
        log.warning("%s: training on the CPU: %s", name, reason)
        return None, reason, cfg

    def _on_this_machine(self, cfg: TrainingGPUConfig) -> TrainingGPUConfig:
        """``cfg`` for the GPUs of this machine, where the job runs: GPUs on
        another node would be the wrong devices here. Raises AllocationRefused
        (never possible) when the daemon has no node by this machine's name."""
        node = this_node_name()
        nodes = self.manager.get_node_names()
        if node not in nodes:
            raise AllocationRefused(
                f"this machine is node {node!r} ($GPURM_NODE_NAME, else the host name) and the gpurm "
                f"daemon at {self.manager.url} has no node by that name (its nodes: "
                f"{', '.join(nodes) or 'none'}); the job runs in this process, so it can only use this "
                "machine's GPUs: run it on one of those nodes, set GPURM_NODE_NAME if this machine is "
                "one of them under another name, or use the daemon that manages this machine",
                code="unschedulable_never", status=None)
        return dataclasses.replace(cfg, node_name=node)

    def _train(self, algorithm: AlgorithmType, config: TrainingConfig, gpu_cfg: TrainingGPUConfig,
               allocation: Optional[Allocation], reason: Optional[str], features: "np.ndarray",
               labels: "np.ndarray", class_names: List[str]) -> TrainingResult:
        framework = config.framework
        if allocation is None:
            source = PlanSource(cpu_plan(framework, str(reason)), notes=[str(reason)])
        else:
            source = obtain_plan(self.manager, framework, gpu_cfg, allocation)
        task = config.task
        num_classes = len(class_names) if task == "classification" else 0
        model_config = {
            "type": "mlp", "input_dim": int(features.shape[1]), "hidden_units": list(config.hidden_units),
            "output_dim": max(num_classes, 1), "activation": config.activation, "dropout": config.dropout,
            "task": task, "learning_rate": config.learning_rate,
        }
        split = _split(features, labels, config.validation_split, config.seed, stratify=task == "classification")
        log.info("%s: training %s with %s: %d samples, %d features, %s, allocation %s", config.name,
                 algorithm.value, framework, len(features), features.shape[1],
                 f"{num_classes} classes" if num_classes else "regression",
                 allocation.allocation_id if allocation else "none")
        started = time.monotonic()
        try:
            if framework == PYTORCH:
                curves, setup_dict, device, on_gpu, fallback = _train_pytorch(
                    PyTorchGPUIntegration(self.manager), source, gpu_cfg, model_config, config, split)
            else:
                curves, setup_dict, device, on_gpu, fallback = _train_tensorflow(
                    TensorFlowGPUIntegration(self.manager), source, gpu_cfg, model_config, config, split)
        except Exception as err:  # noqa: BLE001 - re-raised, with advice when it is an OOM
            if _is_out_of_memory(err):
                raise TrainingOutOfMemory(f"training ran out of device memory: {err}",
                                          list(source.plan.get("oom_advice") or [])) from err
            raise
        elapsed = time.monotonic() - started
        has_val = len(split[2]) > 0
        result = TrainingResult(
            name=config.name, algorithm_type=algorithm.value, framework=framework, task=task, device=device,
            used_gpu=on_gpu,
            fallback_reason=fallback, allocation_id=allocation.allocation_id if allocation else "",
            node_name=allocation.node_name if allocation else "",
            gpu_count=allocation.gpu_count if allocation and on_gpu else 0, epochs=config.epochs,
            num_samples=int(len(features)), num_features=int(features.shape[1]), num_classes=num_classes,
            loss_curve=curves["loss"], val_loss_curve=curves["val_loss"],
            accuracy=(curves["val_accuracy"][-1] if has_val else curves["accuracy"][-1]) if num_classes else None,
            train_accuracy=curves["accuracy"][-1] if num_classes else None,
            mae=(curves["val_mae"][-1] if has_val else curves["mae"][-1]) if not num_classes else None,
            training_time_seconds=round(elapsed, 3), setup=setup_dict,
        )
        log.info("%s: trained %s on %s in %.2fs: final loss %.4f, accuracy %s%s", config.name, algorithm.value,
                 device, elapsed, result.loss_curve[-1], result.accuracy,
                 f" (CPU fallback: {fallback})" if fallback else "")
        return result


Split = Tuple["np.ndarray", "np.ndarray", "np.ndarray", "np.ndarray"]


def _train_pytorch(integration: PyTorchGPUIntegration, source: PlanSource, cfg: TrainingGPUConfig,
                   model_config: Dict[str, Any], config: TrainingConfig,
                   split: Split) -> Tuple[Dict[str, List[float]], Dict[str, Any], str, bool, Optional[str]]:
    import torch

    setup: PyTorchSetup = integration.apply_plan(source, cfg)
    torch.manual_seed(config.seed)
    model = integration.create_pytorch_model_with_gpu(model_config, cfg)
    device = setup.torch_device
    classification = model_config["task"] == "classification"
    x_train, y_train, x_val, y_val = (torch.from_numpy(a) for a in split)
    x_train, x_val = x_train.to(device), x_val.to(device)
    y_train, y_val = (y.long() if classification else y.float().view(-1, 1) for y in (y_train, y_val))
    y_train, y_val = y_train.to(device), y_val.to(device)
    if setup.distributed:  # each rank trains on its shard; DDP averages the gradients
        x_train, y_train = x_train[setup.rank::setup.world_size], y_train[setup.rank::setup.world_size]
    loss_fn: torch.nn.Module = torch.nn.CrossEntropyLoss() if classification else torch.nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    scaler = setup.make_grad_scaler()
    generator = torch.Generator().manual_seed(config.seed)
    curves: Dict[str, List[float]] = {k: [] for k in ("loss", "val_loss", "accuracy", "val_accuracy", "mae",
                                                      "val_mae")}

    def evaluate(x: "torch.Tensor", y: "torch.Tensor") -> Tuple[float, float]:
        """(loss, accuracy or MAE) without gradients."""
        with torch.no_grad(), setup.autocast():
            out = model(x)
            loss = float(loss_fn(out.float(), y))
        if classification:
            return loss, float((out.argmax(dim=1) == y).float().mean())
        return loss, float((out.float() - y).abs().mean())

    for _ in range(config.epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=generator).to(device)
        for start in range(0, len(order), config.batch_size):
            batch = order[start:start + config.batch_size]
            optimizer.zero_grad(set_to_none=True)
            with setup.autocast():
                loss = loss_fn(model(x_train[batch]).float(), y_train[batch])
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        model.eval()
        train_loss, train_metric = evaluate(x_train, y_train)
        curves["loss"].append(train_loss)
        curves["accuracy" if classification else "mae"].append(train_metric)
        if len(x_val):
            val_loss, val_metric = evaluate(x_val, y_val)
            curves["val_loss"].append(val_loss)
            curves["val_accuracy" if classification else "val_mae"].append(val_metric)
    return curves, setup.to_dict(), setup.device, setup.on_gpu, setup.fallback_reason


def _train_tensorflow(integration: TensorFlowGPUIntegration, source: PlanSource, cfg: TrainingGPUConfig,
                      model_config: Dict[str, Any], config: TrainingConfig,
                      split: Split) -> Tuple[Dict[str, List[float]], Dict[str, Any], str, bool, Optional[str]]:
    import tensorflow as tf

    setup: TensorFlowSetup = integration.apply_plan(source, cfg)
    tf.keras.utils.set_random_seed(config.seed)
    model = integration.create_tensorflow_model_with_gpu(model_config, cfg)
    x_train, y_train, x_val, y_val = split
    history = model.fit(x_train, y_train, epochs=config.epochs, batch_size=config.batch_size, shuffle=True,
                        validation_data=(x_val, y_val) if len(x_val) else None, verbose=0)
    h = {k: [float(v) for v in values] for k, values in history.history.items()}
    curves = {k: h.get(k, []) for k in ("loss", "val_loss", "accuracy", "val_accuracy", "mae", "val_mae")}
    device = setup.logical_devices[0] if setup.on_gpu and setup.logical_devices else "cpu"
    return curves, setup.to_dict(), device, setup.on_gpu, setup.fallback_reason


def _is_out_of_memory(err: BaseException) -> bool:
    name = type(err).__name__
    return ("OutOfMemory" in name or name == "ResourceExhaustedError"
            or (isinstance(err, RuntimeError) and "out of memory" in str(err).lower()))


def _invalid(field_name: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_argument", field=field_name)


def _prepare_data(algorithm: AlgorithmType, config: TrainingConfig,
                  data: Mapping[str, Any]) -> Tuple["np.ndarray", "np.ndarray", List[str]]:
    """(features float32 [n, d], targets [n] int64 class indexes or float32, class names)."""
    import numpy as np

    if not isinstance(data, Mapping):
        raise _invalid("data", "expected a dict with 'signals' or 'features', and 'labels'")
    if "labels" not in data:
        raise _invalid("labels", "data needs 'labels'")
    if "signals" in data:
        signals = np.asarray(data["signals"], dtype=np.float64)
        if signals.ndim != 2 or signals.shape[1] < 8:
            raise _invalid("signals", f"expected a 2-D array [windows, >= 8 samples], got shape {signals.shape}")
        rate = data.get("sample_rate", config.algorithm_params.get("sample_rate"))
        if rate is None or not float(rate) > 0:
            raise _invalid("sample_rate", "raw signals need sample_rate (Hz) in data or algorithm_params")
        features = vibration_features(signals, float(rate), config.algorithm_params.get("fault_frequencies") or {})
    elif "features" in data:
        features = np.asarray(data["features"], dtype=np.float64)
        if features.ndim != 2 or features.shape[1] < 1:
            raise _invalid("features", f"expected a 2-D array [samples, features], got shape {features.shape}")
    else:
        raise _invalid("data", f"{algorithm.value} needs 'signals' (with sample_rate) or 'features'")
    raw_labels = np.asarray(data["labels"])
    if raw_labels.ndim != 1 or len(raw_labels) != len(features):
        raise _invalid("labels", f"expected {len(features)} labels, got shape {raw_labels.shape}")
    if len(features) < 2:
        raise _invalid("data", "need at least 2 samples")
    if not np.all(np.isfinite(features)):
        raise _invalid("features", "features contain NaN or infinity")
    if config.task == "classification":
        names, targets = np.unique(raw_labels, return_inverse=True)
        return features.astype(np.float32), targets.astype(np.int64), [str(n) for n in names]
    return features.astype(np.float32), raw_labels.astype(np.float32), []


def _split(features: "np.ndarray", labels: "np.ndarray", validation_split: float, seed: int,
           stratify: bool) -> Split:
    """Shuffled train/validation split (per class when stratified), features
    standardized with the training statistics."""
    import numpy as np

    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)] if stratify else [np.arange(len(labels))]
    train_idx: List["np.ndarray"] = []
    val_idx: List["np.ndarray"] = []
    for group in groups:
        group = rng.permutation(group)
        n_val = int(math.floor(len(group) * validation_split))
        val_idx.append(group[:n_val])
        train_idx.append(group[n_val:])
    train = rng.permutation(np.concatenate(train_idx))
    val = np.concatenate(val_idx).astype(np.int64)
    mean = features[train].mean(axis=0)
    std = features[train].std(axis=0)
    std[std == 0] = 1.0
    scaled = ((features - mean) / std).astype(np.float32)
    return scaled[train], labels[train], scaled[val], labels[val]


def vibration_features(signals: "np.ndarray", sample_rate: float,
                       fault_frequencies: Mapping[str, float], bands: int = 8) -> "np.ndarray":
    """Features of vibration windows (one per row), for bearing diagnostics.

    Time domain: RMS, peak, peak-to-peak, crest factor, kurtosis, skewness,
    shape factor, impulse factor. Frequency domain: the share of spectral energy
    in ``bands`` equal bands up to Nyquist, the spectral centroid and the
    dominant frequency (both as a fraction of Nyquist). Envelope spectrum (the
    magnitude of the analytic signal, via FFT): for each named fault frequency,
    the largest envelope amplitude within 3 % (at least 1.5 FFT bins) of it
    and of its 2nd harmonic,
    relative to the envelope's mean amplitude. Returns float64 [windows, 10 +
    bands + 2 x len(fault_frequencies)].
    """
    import numpy as np

    x = signals - signals.mean(axis=1, keepdims=True)
    n = x.shape[1]
    rms = np.sqrt((x ** 2).mean(axis=1))
    peak = np.abs(x).max(axis=1)
    std = x.std(axis=1)
    safe_std = np.where(std > 0, std, 1.0)
    kurtosis = ((x / safe_std[:, None]) ** 4).mean(axis=1)
    skewness = ((x / safe_std[:, None]) ** 3).mean(axis=1)
    mean_abs = np.abs(x).mean(axis=1)
    safe_rms = np.where(rms > 0, rms, 1.0)
    safe_mean_abs = np.where(mean_abs > 0, mean_abs, 1.0)
    time_features = [rms, peak, x.max(axis=1) - x.min(axis=1), peak / safe_rms, kurtosis, skewness,
                     rms / safe_mean_abs, peak / safe_mean_abs]

    spectrum = np.abs(np.fft.rfft(x, axis=1)) ** 2
    freqs = np.fft.rfftfreq(n, d=1.0 / sample_rate)
    nyquist = sample_rate / 2.0
    total = spectrum.sum(axis=1)
    safe_total = np.where(total > 0, total, 1.0)
    edges = np.linspace(0.0, nyquist, bands + 1)
    band_energy = [spectrum[:, (freqs >= lo) & (freqs < hi if i < bands - 1 else freqs <= hi)].sum(axis=1)
                   / safe_total for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:]))]
    centroid = (spectrum * freqs).sum(axis=1) / safe_total / nyquist
    dominant = freqs[spectrum.argmax(axis=1)] / nyquist

    # Analytic signal: zero the negative frequencies, double the positive ones.
    full = np.fft.fft(x, axis=1)
    weights = np.zeros(n)
    weights[0] = 1.0
    if n % 2 == 0:
        weights[n // 2] = 1.0
        weights[1:n // 2] = 2.0
    else:
        weights[1:(n + 1) // 2] = 2.0
    envelope = np.abs(np.fft.ifft(full * weights, axis=1))
    envelope -= envelope.mean(axis=1, keepdims=True)
    env_spectrum = np.abs(np.fft.rfft(envelope, axis=1)) / n
    env_mean = env_spectrum[:, 1:].mean(axis=1)
    safe_env_mean = np.where(env_mean > 0, env_mean, 1.0)
    envelope_features = []
    for name in sorted(fault_frequencies):
        base = float(fault_frequencies[name])
        for harmonic in (1, 2):
            target = base * harmonic
            half_width = max(0.03 * target, 1.5 * sample_rate / n)  # 3 %, at least 1.5 FFT bins
            window = np.abs(freqs - target) <= half_width
            if not window.any():
                window = np.zeros_like(freqs, dtype=bool)
                window[int(np.argmin(np.abs(freqs - target)))] = True
            envelope_features.append(env_spectrum[:, window].max(axis=1) / safe_env_mean)
    return np.stack(time_features + band_energy + [centroid, dominant] + envelope_features, axis=1)
