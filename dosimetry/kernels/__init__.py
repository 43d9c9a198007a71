"""Voxel S-value kernels: the published tables and the dose-point-kernel library."""

from ._kernel import Kernel

__all__ = ["Kernel"]
