"""The netsim conformance suite: does a driver honour libnetwork's contract?

Run it against any driver::

    pytest --pyargs netsim.conformance --netsim-driver=bridge
    pytest --pyargs netsim.conformance --netsim-driver=mypkg.driver:MyDriver --netsim-kernel=linux
    pytest --pyargs netsim.conformance --netsim-driver=unix:///run/docker/plugins/weave.sock
    pytest --pyargs netsim.conformance --netsim-kernel=linux \
        --netsim-plugin-cmd "/usr/bin/myplugin --flag" --netsim-plugin-name myplugin

A plugin program (any language) given by ``--netsim-plugin-cmd`` is started
for every check inside that check's simulated host (see
:mod:`netsim.plugin.launcher`); on the fake kernel the checks marked
``kernel_effects`` skip for it, since it cannot reach the in-memory kernel.

Each check is a named test; the module it lives in is its contract area
(capability, network, endpoint, join, external, events, discovery,
concurrency, reachability). After every check the kernel must be exactly as
it was before the check's controller was created.
"""

AREAS = (
    "capability",
    "network",
    "endpoint",
    "join",
    "external",
    "events",
    "discovery",
    "concurrency",
    "reachability",
)
