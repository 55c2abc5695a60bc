"""The real Linux kernel through pyroute2, inside namespaces netsim creates."""

from netsim.kernel.linux.kernel import LinuxKernel

__all__ = ["LinuxKernel"]
