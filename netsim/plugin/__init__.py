"""Docker's plugin protocol, both ends, and plugin programs.

* server: ``PluginServer(driver=..., ipam=..., socket_path=...)`` answers
  Docker's ``/Plugin.Activate``, ``/NetworkDriver.*`` and ``/IpamDriver.*``
  calls; ``netsim plugin serve MODULE:CLASS --socket PATH`` does the same
  from a shell (:mod:`netsim.plugin.cli`);
* client: :mod:`netsim.plugin.client` (calls, activation),
  :mod:`netsim.plugin.discovery` (Docker's plugin directories),
  :mod:`netsim.plugin.wire` (HTTP/1.1), shared by ``drivers.remote`` and
  ``ipam.remote``;
* programs: :mod:`netsim.plugin.launcher` starts a plugin in any language
  inside a simulated host (:mod:`netsim.plugin.enter`) and stops it;
  :mod:`netsim.plugin.hosted` is the plugin's side of that.
"""

from __future__ import annotations

from netsim.plugin.handlers import PluginHandlers
from netsim.plugin.server import PluginServer

__all__ = ["PluginHandlers", "PluginServer"]
