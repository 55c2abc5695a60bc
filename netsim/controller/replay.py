"""A kernel that lets drivers rebuild their in-memory state after a restart
without changing the kernel, and says what each object should own there.

A restarted controller calls its drivers again with every recorded network,
endpoint and join (libnetwork's drivers reload theirs from the store; netsim's
built-ins and any in-process driver are rebuilt this way instead, with no
code of their own). While :attr:`ReplayKernel.replaying`:

* reads go to the real kernel;
* links, addresses, routes, neighbours, FDB entries and sysctls
  are *recorded, not applied*: the kernel has them already (or lost them,
  which the recovery then finds), and each created link is noted against the
  object being replayed (:attr:`owner`), so the recovery knows what every
  record should own;
* NAT/filter rules are applied only when missing: a real kernel adopted from
  a crashed process starts with an empty rule memory (its tables are
  flushed), so replay puts every owned rule back; drivers' listeners (the
  bridge's docker-proxy) likewise, and a revoked one is removed.

After :meth:`go_live` the wrapper is transparent: bound methods of the inner
kernel are copied onto it, so a lookup costs what it costs on the kernel.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable
from typing import Any

from netsim.kernel.base import Kernel, Rule

Owner = Hashable
LinkRef = tuple[str, str]

#: calls that change the kernel; everything else is a read and passes through
MUTATIONS = frozenset(
    {
        "add_namespace",
        "delete_namespace",
        "add_veth",
        "add_bridge",
        "add_macvlan",
        "add_ipvlan",
        "add_vlan",
        "add_vxlan",
        "delete_link",
        "set_link_up",
        "set_mtu",
        "set_mac",
        "set_master",
        "move_link",
        "rename_link",
        "add_address",
        "delete_address",
        "add_route",
        "delete_route",
        "add_neighbour",
        "delete_neighbour",
        "add_fdb",
        "delete_fdb",
        "set_sysctl",
        "add_rule",
        "delete_rule",
        "add_listener",
        "delete_listener",
    }
)
_NEW_LINK = frozenset({"add_bridge", "add_macvlan", "add_ipvlan", "add_vlan", "add_vxlan"})


class ReplayKernel:
    """Duck-typed :class:`Kernel` around ``inner`` (see the module doc).

    >>> from netsim.kernel.fake import FakeKernel
    >>> kernel = FakeKernel(); kernel.add_namespace(kernel.ns("h"))
    >>> replay = ReplayKernel(kernel); replay.owner = "net1"
    >>> replay.add_bridge(kernel.ns("h"), "br0")
    >>> [link.name for link in kernel.links(kernel.ns("h"))], sorted(replay.owned_links["net1"])
    (['lo'], [('netsim-...-h', 'br0')])
    """

    def __init__(self, inner: Kernel) -> None:
        self.inner = inner
        self.replaying = True
        #: the object whose replay is running (what new links are noted against)
        self.owner: Owner = None
        self.owned_links: defaultdict[Owner, set[LinkRef]] = defaultdict(set)
        self.owned_rules: defaultdict[Owner, list[tuple[str, Rule]]] = defaultdict(list)
        self.owned_namespaces: defaultdict[Owner, set[str]] = defaultdict(set)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.inner, name)
        if name not in MUTATIONS:
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            # Checked at call time: an undo step captured during replay acts for real later.
            if not self.replaying:
                return value(*args, **kwargs)
            return self._record(name, value, args, kwargs)

        return call

    def _record(self, name: str, apply: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        links = self.owned_links[self.owner]
        if name in _NEW_LINK:
            links.add((args[0], args[1]))
        elif name == "add_veth":
            ns, link, peer = args[0], args[1], args[2]
            peer_ns = kwargs.get("peer_ns", args[3] if len(args) > 3 else None)
            links.update({(ns, link), (peer_ns or ns, peer)})
        elif name == "delete_link":
            links.discard((args[0], args[1]))
        elif name in ("move_link", "rename_link"):
            ns, link = args[0], args[1]
            if name == "move_link":
                new_ns = kwargs.get("new_ns", args[2] if len(args) > 2 else ns)
                new_name = kwargs.get("new_name", args[3] if len(args) > 3 else None) or link
            else:
                new_ns, new_name = ns, kwargs.get("new_name", args[2] if len(args) > 2 else link)
            if (ns, link) in links:
                links.discard((ns, link))
                links.add((new_ns, new_name))
        elif name == "add_namespace":
            self.owned_namespaces[self.owner].add(args[0])
        elif name == "add_rule":
            ns, rule = args[0], kwargs["rule"] if "rule" in kwargs else args[1]
            self.owned_rules[self.owner].append((ns, rule))
            if rule not in self.inner.rules(ns):
                return apply(*args, **kwargs)
        elif name == "delete_rule":
            ns, rule = args[0], kwargs["rule"] if "rule" in kwargs else args[1]
            owned = self.owned_rules[self.owner]
            if (ns, rule) in owned:
                owned.remove((ns, rule))
        elif name in ("add_listener", "delete_listener"):
            # A driver's listeners (the bridge's docker-proxy) are process state like
            # rules: put back when a crash took them, removed when the clean-up of a
            # broken object revokes them (nothing else would).
            ns, listener = args[0], kwargs["listener"] if "listener" in kwargs else args[1]
            if (listener in self.inner.listeners(ns)) == (name == "delete_listener"):
                return apply(*args, **kwargs)
        return None

    def go_live(self) -> None:
        """Stop replaying: from now on every call goes straight to the kernel."""
        self.replaying = False
        for name in dir(self.inner):
            if not name.startswith("_"):
                value = getattr(self.inner, name, None)
                if callable(value):
                    self.__dict__[name] = value

    def expected_links(self) -> set[LinkRef]:
        """Every link some replayed object owns."""
        out: set[LinkRef] = set()
        for owned in self.owned_links.values():
            out |= owned
        return out

    def expected_rules(self) -> list[tuple[str, Rule]]:
        return [pair for owned in self.owned_rules.values() for pair in owned]
