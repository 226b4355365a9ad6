"""`gpurm run --distributed` end to end on the CPU: the real daemon and gpurm
binary, torchrun from this environment's PyTorch, and two ranks that set up
through gpurm's PyTorch integration, train a DistributedDataParallel model one
step over gloo and all-reduce their ranks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import Daemon, _binary

TRAIN = textwrap.dedent("""
    import torch
    import torch.distributed as dist
    import gpurm

    cfg = gpurm.TrainingGPUConfig(gpu_count=2, gpu_type="A100", distributed_training=True)
    integration = gpurm.get_pytorch_gpu_integration()
    model = integration.create_pytorch_model_with_gpu(
        {"type": "mlp", "input_dim": 4, "hidden_units": [8], "output_dim": 1}, cfg)
    setup = model.gpurm_setup
    loss = model(torch.randn(16, 4)).pow(2).mean()
    loss.backward()
    total = torch.tensor([float(setup.rank + 1)])
    dist.all_reduce(total)
    # One write per line (under PIPE_BUF, so atomic): both ranks share the pipe.
    print(f"rank={setup.rank} world={setup.world_size} backend={setup.backend} "
          f"ddp={type(model).__name__} sum={total.item():g}\\n", end="", flush=True)
    dist.destroy_process_group()
""")


def test_distributed_run_trains_on_two_cpu_ranks_over_gloo(daemon: Daemon, tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    done = subprocess.run(
        [str(_binary()), "run", "--url", daemon.url, "--gpus", "2", "--type", "A100", "--distributed",
         "--log-dir", str(tmp_path / "logs"), "--", sys.executable, str(script)],
        # gpurm run uses this machine's GPUs: here, the demo cluster's A100 node.
        env={**os.environ, "GPURM_URL": daemon.url, "GPURM_NODE_NAME": "gpu-node-2"}, capture_output=True,
        text=True, timeout=300,
        cwd=tmp_path)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    lines = sorted(line for line in done.stdout.splitlines() if line.startswith("rank="))
    assert lines == [
        "rank=0 world=2 backend=gloo ddp=DistributedDataParallel sum=3",
        "rank=1 world=2 backend=gloo ddp=DistributedDataParallel sum=3",
    ], done.stdout + done.stderr
    log = (tmp_path / "logs" / "training.log").read_text()
    assert "out| rank=0 world=2" in log and "out| rank=1 world=2" in log, log
