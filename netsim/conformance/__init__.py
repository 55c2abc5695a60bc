"""The netsim conformance suite: does a driver honour libnetwork's contract?

Run it against any driver::

    pytest --pyargs netsim.conformance --netsim-driver=bridge
    pytest --pyargs netsim.conformance --netsim-driver=mypkg.driver:MyDriver --netsim-kernel=linux
    pytest --pyargs netsim.conformance --netsim-driver=unix:///run/docker/plugins/weave.sock

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
