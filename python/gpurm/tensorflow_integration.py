"""TensorFlow on the GPUs gpurm planned: :func:`get_tensorflow_gpu_integration`.

TensorFlow is imported inside the methods, never when gpurm is imported.
Device settings (visible devices, memory limits) can only be changed before
TensorFlow initializes its devices; :meth:`TensorFlowGPUIntegration.setup_tensorflow_gpu`
must therefore run before the first TensorFlow operation of the process, and
reports in ``warnings`` whatever it could not apply because that already happened.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional

from .allocation import Allocation
from .config import TrainingGPUConfig, as_config
from .manager import ConfigLike, GPUResourceManager
from .models import MlpSpec
from .integration_base import FrameworkIntegration, ProcessWide
from .plans import TENSORFLOW, PlanSource, export_environment, obtain_plan

if TYPE_CHECKING:  # pragma: no cover - typing only
    import tensorflow as tf

log = logging.getLogger("gpurm")


@dataclass
class TensorFlowSetup:
    """What :meth:`TensorFlowGPUIntegration.setup_tensorflow_gpu` applied.

    Attributes:
        device: "gpu" (or "xpu"/"npu") when TensorFlow runs on the planned
            devices, "cpu" otherwise.
        on_gpu: ``device != "cpu"``.
        fallback_reason: why it runs on the CPU (None on a GPU).
        logical_devices: the TensorFlow device names the strategy uses.
        memory_limit_mb: the hard per-device limit applied (None: none).
        mixed_precision_policy: the Keras global policy set.
        strategy_name: the tf.distribute strategy class name, or "default".
        strategy: the strategy object (models are built in its scope).
        environment: the variables set in ``os.environ``.
        node_name, allocation_id, reserved: where the plan came from
            (see :class:`gpurm.plans.PlanSource`).
        batch_size_estimate: the daemon's batch size estimate per device, if any.
        warnings: everything worth knowing that did not stop the setup.
        plan: the plan as received.
    """

    device: str
    on_gpu: bool
    fallback_reason: Optional[str]
    logical_devices: List[str]
    memory_limit_mb: Optional[int]
    mixed_precision_policy: str
    strategy_name: str
    strategy: Any = field(repr=False)
    environment: Dict[str, str]
    node_name: str
    allocation_id: str
    reserved: bool
    batch_size_estimate: Optional[int]
    warnings: List[str]
    plan: Dict[str, Any] = field(repr=False)

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-serializable summary (without the strategy object and the raw plan)."""
        return {
            "framework": "tensorflow", "device": self.device, "on_gpu": self.on_gpu,
            "fallback_reason": self.fallback_reason, "logical_devices": list(self.logical_devices),
            "memory_limit_mb": self.memory_limit_mb, "mixed_precision_policy": self.mixed_precision_policy,
            "strategy": self.strategy_name, "environment": dict(self.environment),
            "node_name": self.node_name, "allocation_id": self.allocation_id, "reserved": self.reserved,
            "batch_size_estimate": self.batch_size_estimate, "warnings": list(self.warnings),
        }


class TensorFlowGPUIntegration(FrameworkIntegration[TensorFlowSetup]):
    """Configures TensorFlow for a gpurm plan and builds models on it."""

    def setup_tensorflow_gpu(self, cfg: ConfigLike = None, allocation: Optional[Allocation] = None) -> TensorFlowSetup:
        """Applies the plan for ``cfg`` and returns what was applied.

        The plan covers ``allocation``'s GPUs when given (or the newest
        allocation the manager holds for an equal config), else what the request
        would get now (not reserved). Sets the plan's environment
        (CUDA_VISIBLE_DEVICES with CUDA_DEVICE_ORDER=PCI_BUS_ID, TF_CONFIG for
        multi-worker, ...), a hard logical-device memory limit of
        ``gpu_memory_fraction`` x granted memory (or memory growth when the plan
        has no limit), the Keras mixed-precision policy, and creates the
        tf.distribute strategy (OneDevice, Mirrored or MultiWorkerMirrored).
        Falls back to the CPU, saying so in ``fallback_reason`` and the log, when
        no GPU is planned or TensorFlow sees none.
        """
        config = as_config(cfg)
        return self.apply_plan(obtain_plan(self.manager, TENSORFLOW, config, allocation), config)

    def apply_plan(self, source: PlanSource, config: TrainingGPUConfig) -> TensorFlowSetup:
        """Applies a plan obtained elsewhere (e.g. :func:`gpurm.plans.cpu_plan`
        wrapped in a PlanSource) as :meth:`setup_tensorflow_gpu` would, and
        remembers it as the setup for ``config``."""
        plan = source.plan
        warnings = list(source.notes)
        environment = export_environment(plan)

        import tensorflow as tf

        planned = str(plan.get("device", "cpu"))
        device_type = str(plan.get("physical_device_type") or planned.upper())
        physical = tf.config.list_physical_devices(device_type) if planned != "cpu" else []
        fallback: Optional[str] = None
        if planned == "cpu":
            fallback = warnings[0] if warnings else "the plan is for the CPU"
        elif not physical:
            fallback = (f"the plan is for {len(plan.get('visible_devices') or [])} {device_type} device(s) "
                        f"but TensorFlow sees none (CPU-only build or no driver): running on the CPU")
        memory_limit = plan.get("memory_limit_mb")
        if fallback is None:
            for device in physical:
                try:
                    if memory_limit:
                        tf.config.set_logical_device_configuration(
                            device, [tf.config.LogicalDeviceConfiguration(memory_limit=int(memory_limit))])
                    else:
                        tf.config.experimental.set_memory_growth(device, True)
                except (RuntimeError, ValueError) as err:
                    warnings.append(f"memory settings of {device.name} not applied "
                                    f"(TensorFlow devices already initialized): {err}")
            logical = [d.name for d in tf.config.list_logical_devices(device_type)]
            policy = str(plan.get("mixed_precision_policy") or "float32")
            strategy_name = str(plan.get("strategy") or "default")
        else:
            _hide_accelerators(tf, warnings)
            logical = [d.name for d in tf.config.list_logical_devices("CPU")][:1]
            memory_limit = None
            policy = "float32"
            strategy_name = "default"
            log.warning("TensorFlow falls back to the CPU: %s", fallback)
        tf.keras.mixed_precision.set_global_policy(policy)
        strategy = _make_strategy(tf, strategy_name, logical, plan)
        setup = TensorFlowSetup(
            device=planned if fallback is None else "cpu", on_gpu=fallback is None, fallback_reason=fallback,
            logical_devices=logical, memory_limit_mb=int(memory_limit) if memory_limit else None,
            mixed_precision_policy=policy, strategy_name=strategy_name, strategy=strategy,
            environment=environment, node_name=source.node_name, allocation_id=source.allocation_id,
            reserved=source.reserved, batch_size_estimate=plan.get("batch_size_estimate"),
            warnings=warnings, plan=plan,
        )
        if setup.on_gpu:
            log.info("TensorFlow on %s (%s, limit %s MB, policy %s, allocation %s)", ", ".join(logical),
                     strategy_name, setup.memory_limit_mb, policy, setup.allocation_id or "none: not reserved")
        for warning in warnings:
            if warning != fallback:
                log.info("TensorFlow setup: %s", warning)
        self._remember(setup, config)
        return setup

    def create_tensorflow_model_with_gpu(self, model_config: Mapping[str, Any], cfg: ConfigLike = None,
                                         allocation: Optional[Allocation] = None) -> "tf.keras.Model":
        """Builds and compiles the MLP of ``model_config`` (see :class:`gpurm.models.MlpSpec`)
        inside the strategy scope of the setup for ``cfg``; runs
        :meth:`setup_tensorflow_gpu` first unless it already ran for an equal
        config. The model is compiled with the spec's optimizer and learning
        rate, loss MSE (regression) or sparse categorical cross-entropy
        (classification, with accuracy), and carries the setup as
        ``model.gpurm_setup``. With a mixed-precision policy the output layer
        stays float32."""
        spec = MlpSpec.from_config(model_config)
        config = as_config(cfg)
        setup = self._setup_to_reuse(config, allocation)
        if setup is None:
            setup = self.setup_tensorflow_gpu(config, allocation)

        import tensorflow as tf

        with setup.strategy.scope():
            inputs = tf.keras.Input(shape=(spec.input_dim,), name="features")
            x = inputs
            for i, units in enumerate(spec.hidden_units):
                x = tf.keras.layers.Dense(units, activation=spec.activation, name=f"dense_{i}")(x)
                if spec.dropout > 0:
                    x = tf.keras.layers.Dropout(spec.dropout, name=f"dropout_{i}")(x)
            x = tf.keras.layers.Dense(spec.output_dim, name="output_dense")(x)
            outputs = tf.keras.layers.Activation(spec.output_activation, dtype="float32", name="output")(x)
            model = tf.keras.Model(inputs, outputs, name="gpurm_mlp")
            optimizer = {"adam": tf.keras.optimizers.Adam, "sgd": tf.keras.optimizers.SGD,
                         "rmsprop": tf.keras.optimizers.RMSprop}[spec.optimizer](learning_rate=spec.learning_rate)
            if spec.task == "classification":
                loss = tf.keras.losses.SparseCategoricalCrossentropy(
                    from_logits=spec.output_activation == "linear")
                model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
            else:
                model.compile(optimizer=optimizer, loss="mse", metrics=["mae"])
        model.gpurm_setup = setup
        return model


def _hide_accelerators(tf: Any, warnings: List[str]) -> None:
    """Makes TensorFlow use no accelerator (a CPU fallback must not touch GPUs others hold)."""
    for device_type in ("GPU", "XPU", "NPU"):
        try:
            if tf.config.list_physical_devices(device_type):
                tf.config.set_visible_devices([], device_type)
        except (RuntimeError, ValueError) as err:
            warnings.append(f"could not hide {device_type} devices (already initialized): {err}")


def _make_strategy(tf: Any, name: str, logical: List[str], plan: Mapping[str, Any]) -> Any:
    if name == "OneDeviceStrategy":
        return tf.distribute.OneDeviceStrategy(logical[0])
    if name == "MirroredStrategy":
        return tf.distribute.MirroredStrategy(devices=logical)
    if name == "MultiWorkerMirroredStrategy":
        # The cluster comes from TF_CONFIG, set from the plan's environment.
        implementation = (tf.distribute.experimental.CommunicationImplementation.NCCL
                          if plan.get("communication") == "NCCL"
                          else tf.distribute.experimental.CommunicationImplementation.AUTO)
        return tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=tf.distribute.experimental.CommunicationOptions(implementation=implementation))
    return tf.distribute.get_strategy()


_process_wide: ProcessWide[TensorFlowGPUIntegration] = ProcessWide(TensorFlowGPUIntegration)


def get_tensorflow_gpu_integration(manager: Optional[GPUResourceManager] = None) -> TensorFlowGPUIntegration:
    """The process-wide TensorFlow integration (for ``manager`` when given,
    else for :func:`gpurm.get_gpu_resource_manager`)."""
    return _process_wide.get(manager)
