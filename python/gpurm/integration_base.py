"""What the TensorFlow and PyTorch integrations share: the manager they plan
with, the latest setup and the config it was made for (so that building a
model after a setup reuses it), and the process-wide instance."""

from __future__ import annotations

import threading
from typing import Callable, Generic, Optional, Tuple, TypeVar

from .allocation import Allocation
from .config import TrainingGPUConfig
from .manager import GPUResourceManager, get_gpu_resource_manager

SetupT = TypeVar("SetupT")
IntegrationT = TypeVar("IntegrationT", bound="FrameworkIntegration")


class FrameworkIntegration(Generic[SetupT]):
    """Base of the framework integrations. Thread-safe: the latest setup is
    read and replaced under a lock."""

    def __init__(self, manager: Optional[GPUResourceManager] = None) -> None:
        self._manager = manager
        self._lock = threading.Lock()
        self._latest: Optional[Tuple[SetupT, TrainingGPUConfig]] = None

    @property
    def manager(self) -> GPUResourceManager:
        """The manager given at construction, else the process-wide one."""
        return self._manager or get_gpu_resource_manager()

    @property
    def last_setup(self) -> Optional[SetupT]:
        """The result of the latest setup, if any."""
        with self._lock:
            return self._latest[0] if self._latest else None

    def _remember(self, setup: SetupT, config: TrainingGPUConfig) -> None:
        with self._lock:
            self._latest = (setup, config)

    def _setup_to_reuse(self, config: TrainingGPUConfig, allocation: Optional[Allocation]) -> Optional[SetupT]:
        """The latest setup when it was made for an equal config and no
        particular allocation is asked for; None when a new setup is needed."""
        with self._lock:
            if self._latest is None or allocation is not None or self._latest[1] != config:
                return None
            return self._latest[0]


class ProcessWide(Generic[IntegrationT]):
    """Holds the one integration of a kind that serves the process-wide manager."""

    def __init__(self, factory: Callable[[Optional[GPUResourceManager]], IntegrationT]) -> None:
        self._factory = factory
        self._instance: Optional[IntegrationT] = None
        self._lock = threading.Lock()

    def get(self, manager: Optional[GPUResourceManager]) -> IntegrationT:
        """A new integration for ``manager`` when given, else the shared one."""
        if manager is not None:
            return self._factory(manager)
        with self._lock:
            if self._instance is None:
                self._instance = self._factory(None)
            return self._instance
