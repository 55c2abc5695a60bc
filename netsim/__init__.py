"""netsim: libnetwork's driver model in Python, on a fake or the real kernel."""

__version__ = "0.1.0"
