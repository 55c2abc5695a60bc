"""Kernels: ``make_kernel("fake")`` or ``make_kernel("linux")``."""

from __future__ import annotations

from netsim.errors import InvalidParameterError
from netsim.kernel.base import Kernel

KERNEL_KINDS = ("fake", "linux")


def make_kernel(kind: str, run_id: str | None = None) -> Kernel:
    if kind == "fake":
        from netsim.kernel.fake import FakeKernel

        return FakeKernel(run_id)
    if kind == "linux":
        from netsim.kernel.linux import LinuxKernel

        return LinuxKernel(run_id)
    raise InvalidParameterError(f"unknown kernel {kind!r}: expected one of {', '.join(KERNEL_KINDS)}")


__all__ = ["KERNEL_KINDS", "Kernel", "make_kernel"]
