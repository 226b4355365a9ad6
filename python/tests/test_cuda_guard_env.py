"""The CUDA guard in the Python package's exported environment: preloaded for
GPUs an allocation holds, found where ``gpurm run`` finds it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gpurm.plans import add_cuda_guard, find_cuda_guard_library

LIMITS = "GPURM_CUDA_MEMORY_LIMITS_MB"


def test_held_gpus_preload_the_guard_before_an_inherited_preload() -> None:
    env = {"CUDA_VISIBLE_DEVICES": "3,1", LIMITS: "20480,81920"}
    assert add_cuda_guard(env, "alloc-0123", "/opt/gpurm/libgpurm_cuda_guard.so", "libjemalloc.so.2") == []
    assert env == {"CUDA_VISIBLE_DEVICES": "3,1", LIMITS: "20480,81920", "GPURM_ALLOCATION_ID": "alloc-0123",
                   "LD_PRELOAD": "/opt/gpurm/libgpurm_cuda_guard.so:libjemalloc.so.2"}


def test_the_guard_is_preloaded_once() -> None:
    env = {LIMITS: "4096"}
    add_cuda_guard(env, "a", "/g.so", "/g.so other.so")
    assert env["LD_PRELOAD"] == "/g.so:other.so"


def test_planned_but_unreserved_gpus_carry_no_limits() -> None:
    env = {"CUDA_VISIBLE_DEVICES": "0", LIMITS: "4096"}
    assert add_cuda_guard(env, "", "/g.so") == []
    assert env == {"CUDA_VISIBLE_DEVICES": "0"}


def test_gpus_without_limits_are_left_alone() -> None:
    env = {"ROCR_VISIBLE_DEVICES": "0", "HIP_VISIBLE_DEVICES": "0"}
    assert add_cuda_guard(env, "alloc-0123", "/g.so") == []
    assert env == {"ROCR_VISIBLE_DEVICES": "0", "HIP_VISIBLE_DEVICES": "0"}


def test_a_missing_library_is_said() -> None:
    env = {LIMITS: "4096"}
    notes = add_cuda_guard(env, "alloc-0123", None)
    assert "LD_PRELOAD" not in env
    assert len(notes) == 1 and "not held to the grant" in notes[0]


def test_the_library_is_found_next_to_gpurm_or_under_lib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GPURM_CUDA_GUARD_LIBRARY", raising=False)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gpurm = bin_dir / "gpurm"
    gpurm.write_text("#!/bin/sh\n")
    gpurm.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert find_cuda_guard_library() is None
    installed = tmp_path / "lib" / "gpurm" / "libgpurm_cuda_guard.so"
    installed.parent.mkdir(parents=True)
    installed.write_bytes(b"")
    assert find_cuda_guard_library() == str(installed)
    beside = bin_dir / "libgpurm_cuda_guard.so"
    beside.write_bytes(b"")
    assert find_cuda_guard_library() == str(beside)
    monkeypatch.setenv("GPURM_CUDA_GUARD_LIBRARY", os.fspath(tmp_path / "elsewhere.so"))
    assert find_cuda_guard_library() is None
