"""Serve netsim drivers as Docker plugins (the Python SDK for plugin authors).

``PluginServer(driver=..., ipam=..., socket_path=...)`` answers Docker's
``/Plugin.Activate``, ``/NetworkDriver.*`` and ``/IpamDriver.*`` calls;
``netsim plugin serve MODULE:CLASS --socket PATH`` does the same from a shell
(:func:`netsim.plugin.cli.serve_main`).
"""

from __future__ import annotations

from netsim.plugin.handlers import PluginHandlers
from netsim.plugin.server import PluginServer

__all__ = ["PluginHandlers", "PluginServer"]
