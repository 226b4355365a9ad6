"""gpurm: Python client of the gpurm GPU resource manager."""

__version__ = "0.1.0"
