"""Helpers shared by the tests (subprocesses, polling, the examples)."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Callable, Dict

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_python(code: str, env: Dict[str, str], timeout: float = 120) -> "subprocess.CompletedProcess[str]":
    """Runs ``code`` in a fresh interpreter of this environment."""
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


def spawn_python(code: str, env: Dict[str, str]) -> "subprocess.Popen[str]":
    """Starts ``code`` in a fresh interpreter; stdout is a pipe of text lines."""
    return subprocess.Popen([sys.executable, "-u", "-c", code], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.2) -> bool:
    """Polls ``predicate`` until it is truthy or ``timeout`` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return bool(value)
        time.sleep(interval)


def load_example(name: str) -> ModuleType:
    """Imports examples/<name>.py as a module (once)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
