"""The fake kernel: an in-memory model of Linux's network stack."""

from netsim.kernel.fake.kernel import FakeKernel

__all__ = ["FakeKernel"]
