"""The GPU request of a training job: :class:`TrainingGPUConfig`."""

from __future__ import annotations

import dataclasses
import math
import os
import socket
from dataclasses import dataclass
from typing import Any, Dict, Mapping

from .errors import InvalidRequest

#: Lease requested by default, in seconds. A background thread renews it every
#: third of that while the process lives, so a killed job's GPUs come back
#: within a minute. 0 means no lease: held until released.
DEFAULT_LEASE_TTL_SECONDS = 60


@dataclass
class TrainingGPUConfig:
    """What a training job asks for. Validated on construction and on
    :meth:`validate`; invalid values raise :class:`gpurm.InvalidRequest`
    (a ``ValueError``) naming the field.

    Attributes:
        gpu_count: GPUs wanted, >= 1. Default 1.
        gpu_type: model such as "V100", "A100", "H100" (any name the daemon's
            GPU model parser understands); "" means any type. Default "".
        memory_gb: free GPU memory needed on each GPU, in GB (GiB), >= 0;
            0 means no memory requirement. Default 0.0.
        distributed_training: allow placing the GPUs over several nodes
            (all or nothing) and configure tf.distribute / torch.distributed.
            Default False.
        mixed_precision: use float16/bfloat16 mixed precision on the GPUs.
            Default False.
        gpu_memory_fraction: share of each granted GPU's memory the framework
            may use, in (0, 1]. Default 0.9.
        node_name: only place on this node; "" means any node. Default "".
            The training engine, which runs the job in its own process, fills
            in :func:`this_node_name` when it is "" (see
            :class:`gpurm.TrainingConfig`).
        shared: accept a memory slice of a GPU shared with other shared
            allocations; needs memory_gb > 0. Default False.
        lease_ttl_seconds: lease length, >= 0; the client renews it while the
            process lives and the daemon ends the allocation when it lapses.
            0 = the daemon's default lease (server.default_lease_ttl_s).
            Default :data:`DEFAULT_LEASE_TTL_SECONDS` (60).
        policy: placement policy, a name the daemon lists
            (:meth:`gpurm.GPUResourceManager.get_placement_policies`); "" =
            the daemon's default. The daemon checks the name: an unknown one
            raises :class:`gpurm.InvalidRequest` with field "policy" when the
            request is sent. Default "".
    """

    gpu_count: int = 1
    gpu_type: str = ""
    memory_gb: float = 0.0
    distributed_training: bool = False
    mixed_precision: bool = False
    gpu_memory_fraction: float = 0.9
    node_name: str = ""
    shared: bool = False
    lease_ttl_seconds: int = DEFAULT_LEASE_TTL_SECONDS
    policy: str = ""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Checks every field; raises :class:`gpurm.InvalidRequest` on the first bad one."""
        _require_int(self.gpu_count, "gpu_count")
        if self.gpu_count < 1:
            raise _invalid("gpu_count", f"must be >= 1, got {self.gpu_count}")
        _require_str(self.gpu_type, "gpu_type")
        _require_number(self.memory_gb, "memory_gb")
        if self.memory_gb < 0:
            raise _invalid("memory_gb", f"must be >= 0, got {self.memory_gb}")
        _require_bool(self.distributed_training, "distributed_training")
        _require_bool(self.mixed_precision, "mixed_precision")
        _require_number(self.gpu_memory_fraction, "gpu_memory_fraction")
        if not 0.0 < self.gpu_memory_fraction <= 1.0:
            raise _invalid("gpu_memory_fraction", f"must be in (0, 1], got {self.gpu_memory_fraction}")
        _require_str(self.node_name, "node_name")
        _require_bool(self.shared, "shared")
        if self.shared and self.memory_gb <= 0:
            raise _invalid("shared", "a shared GPU slice needs memory_gb > 0")
        _require_int(self.lease_ttl_seconds, "lease_ttl_seconds")
        if self.lease_ttl_seconds < 0:
            raise _invalid("lease_ttl_seconds", f"must be >= 0, got {self.lease_ttl_seconds}")
        _require_str(self.policy, "policy")

    def to_request(self) -> Dict[str, Any]:
        """The JSON body of a GPU request (docs/api.md); empty optional strings are left out."""
        body: Dict[str, Any] = {
            "gpu_count": self.gpu_count,
            "gpu_type": self.gpu_type,
            "memory_gb": float(self.memory_gb),
            "distributed_training": self.distributed_training,
            "mixed_precision": self.mixed_precision,
            "gpu_memory_fraction": float(self.gpu_memory_fraction),
            "shared": self.shared,
            "lease_ttl_seconds": self.lease_ttl_seconds,
        }
        if self.node_name:
            body["node_name"] = self.node_name
        if self.policy:
            body["policy"] = self.policy
        return body

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainingGPUConfig":
        """Builds a config from a mapping of field names; unknown keys raise
        :class:`gpurm.InvalidRequest` naming the key."""
        known = {f.name for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                raise _invalid(str(key), f"unknown field {key!r}; known fields: {', '.join(sorted(known))}")
        return cls(**dict(values))


def this_node_name() -> str:
    """This machine's name as a gpurm node: ``$GPURM_NODE_NAME`` when set and
    not empty, else the host name, else "localhost". The last two are the name
    the daemon's local discovery gives the node it runs on, so a daemon on this
    machine and its clients agree without configuration; ``GPURM_NODE_NAME``
    names this machine as an inventory (or a controller) elsewhere calls it.
    The same rule as ``gpurm run``'s, which also sets the variable for the
    command it starts."""
    return os.environ.get("GPURM_NODE_NAME") or socket.gethostname() or "localhost"


def as_config(cfg: "TrainingGPUConfig | Mapping[str, Any] | None") -> TrainingGPUConfig:
    """Accepts a config, a mapping of its fields, or None (all defaults)."""
    if cfg is None:
        return TrainingGPUConfig()
    if isinstance(cfg, TrainingGPUConfig):
        cfg.validate()
        return cfg
    if isinstance(cfg, Mapping):
        return TrainingGPUConfig.from_dict(cfg)
    raise InvalidRequest(f"expected a TrainingGPUConfig or a dict, got {type(cfg).__name__}", code="invalid_argument")


def _invalid(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_argument", field=field)


def _require_int(value: Any, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(field, f"must be an integer, got {value!r}")


def _require_number(value: Any, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _invalid(field, f"must be a finite number, got {value!r}")


def _require_bool(value: Any, field: str) -> None:
    if not isinstance(value, bool):
        raise _invalid(field, f"must be true or false, got {value!r}")


def _require_str(value: Any, field: str) -> None:
    if not isinstance(value, str):
        raise _invalid(field, f"must be a string, got {value!r}")
