"""The NAT/filter rule model on nftables, one table pair per namespace.

Layout inside each namespace (created on the first rule)::

    table inet netsim    prerouting (nat, dstnat)  output (nat, -100)
                         postrouting (nat, srcnat) forward (filter, 0)
                         two sets per isolation group (nft_isolation.py)
    table bridge netsim  forward (filter, 0), one ifname set per filtered bridge

The kernel here has no ``nft_meta_bridge`` (``meta ibrname``/``obrname``
fail with EOPNOTSUPP), so a bridge-layer Filter on bridge ``br0`` matches
``iifname``/``oifname`` against a named set of br0's current ports, which
:meth:`NftNamespace.sync_bridge_ports` keeps up to date after every link change.

Each batch is JSON, applied atomically, with echo+handle output when rules
are added (rules are deleted by handle). Two interchangeable backends:

* ``library`` (the default when ``libnftables.so.1`` loads): in-process
  through :mod:`netsim.kernel.linux.libnft`, one context per namespace,
  well under a millisecond per batch;
* ``process`` (the fallback, or ``NETSIM_NFT_BACKEND=process``):
  ``nsenter --net=/run/netns/<ns> nft -j [-e -a] -f -`` with the JSON on
  stdin, an argument list, never a shell string; ~10-20 ms per batch.

Rules are remembered in insertion order with their handles, so rules() needs
no nft call and delete_rule removes by handle. An ``Isolated`` membership is
no nft rule of its own but two elements of its group's sets (one batch each
way, whatever the group's size).
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import subprocess
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from netsim.errors import InvalidParameterError, kernel_error
from netsim.kernel.base import Dnat, DnatExempt, Filter, Isolated, Masquerade, Rule, check_dnat_exempt, check_isolated
from netsim.kernel.linux import nft_isolation
from netsim.kernel.linux.libnft import LibNftContext, load_libnft
from netsim.kernel.linux.netns import namespace_path
from netsim.naming import check_ifname
from netsim.validate import parse_ip, parse_network, parse_port

Backend = Literal["library", "process"]
BACKEND_VARIABLE = "NETSIM_NFT_BACKEND"

TABLE = "netsim"
_CHAINS = (
    ("inet", "prerouting", "nat", "prerouting", -100),
    ("inet", "output", "nat", "output", -100),
    ("inet", "postrouting", "nat", "postrouting", 100),
    ("inet", "forward", "filter", "forward", 0),
    ("bridge", "forward", "filter", "forward", 0),
)


def _errno_from_text(text: str) -> int:
    """nft prints strerror(); map it back to the errno (EINVAL when unknown)."""
    for code in sorted(errno.errorcode):
        if os.strerror(code) in text:
            return code
    return errno.EINVAL


def _outcome(ns: str, status: int, output: str, error: str, *, echo: bool) -> list[dict[str, Any]]:
    """The echoed objects of a batch, or the KernelError its error text names (both backends)."""
    if status != 0:
        lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
        message = next((line for line in lines if "Error:" in line), lines[0] if lines else "nft failed")
        raise kernel_error(_errno_from_text(error), f"nft in namespace {ns!r}: {message}")
    if not echo or not output.strip():
        return []
    return list(json.loads(output).get("nftables", []))


def run_nft(ns: str, commands: list[dict[str, Any]], *, echo: bool = False) -> list[dict[str, Any]]:
    """Apply a JSON batch atomically inside ``ns`` with an ``nft`` process; echoed objects when ``echo``."""
    args = ["nsenter", f"--net={namespace_path(ns)}", "nft", "-j"] + (["-e", "-a"] if echo else []) + ["-f", "-"]
    payload = json.dumps({"nftables": commands})
    done = subprocess.run(args, input=payload, capture_output=True, text=True, check=False, timeout=30)
    return _outcome(ns, done.returncode, done.stdout, done.stderr, echo=echo)


def run_nft_library(
    context: LibNftContext, commands: list[dict[str, Any]], *, echo: bool = False
) -> list[dict[str, Any]]:
    """The same as :func:`run_nft`, in-process through ``context`` (bound to its namespace)."""
    done = context.run(json.dumps({"nftables": commands}), echo=echo)
    return _outcome(context.ns, done.status, done.output, done.error, echo=echo)


def default_backend() -> Backend:
    """``process`` when asked for (``NETSIM_NFT_BACKEND=process``) or when libnftables is missing."""
    if os.environ.get(BACKEND_VARIABLE) == "process" or load_libnft() is None:
        return "process"
    return "library"


def _family_of(*addresses: str | None) -> str | None:
    """ "ip" or "ip6" for the given addresses/CIDRs; InvalidParameterError when they mix."""
    families = {("ip6" if ":" in a else "ip") for a in addresses if a}
    if len(families) > 1:
        raise InvalidParameterError(f"rule mixes IPv4 and IPv6 addresses: {[a for a in addresses if a]}")
    return families.pop() if families else None


def _match(left: dict[str, Any], right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def _addr_match(field_name: str, value: str, family: str) -> dict[str, Any]:
    net = ipaddress.ip_network(value, strict=False)
    right: Any = (
        str(net.network_address)
        if net.prefixlen == net.max_prefixlen
        else {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}
    )
    return _match({"payload": {"protocol": family, "field": field_name}}, right)


def _ifname_match(key: str, name: str, op: str = "==") -> dict[str, Any]:
    return _match({"meta": {"key": key}}, name, op)


def validate_rule(rule: Rule) -> None:
    """Refuse malformed rules before anything reaches the kernel."""
    if isinstance(rule, Masquerade):
        parse_network(rule.src, what="masquerade source")
        for name in (rule.out_iface, rule.not_out_iface):
            if name is not None:
                check_ifname(name)
    elif isinstance(rule, Dnat):
        if rule.proto not in ("tcp", "udp"):
            raise InvalidParameterError(f"invalid DNAT protocol {rule.proto!r}: expected tcp or udp")
        parse_port(rule.dport, what="DNAT port")
        parse_port(rule.to_port, what="DNAT target port")
        parse_ip(rule.to_addr, what="DNAT target address")
        if rule.dst is not None:
            parse_ip(rule.dst, what="DNAT address")
        _family_of(rule.to_addr, rule.dst)
        if rule.not_in_iface is not None:
            check_ifname(rule.not_in_iface)
    elif isinstance(rule, Isolated):
        check_isolated(rule)
    elif isinstance(rule, DnatExempt):
        check_dnat_exempt(rule)
    elif isinstance(rule, Filter):
        if rule.action not in ("drop", "accept"):
            raise InvalidParameterError(f"invalid filter action {rule.action!r}: expected drop or accept")
        if rule.layer not in ("ip", "bridge"):
            raise InvalidParameterError(f"invalid filter layer {rule.layer!r}: expected ip or bridge")
        for cidr in (rule.src, rule.dst):
            if cidr is not None:
                parse_network(cidr, what="filter subnet")
        _family_of(rule.src, rule.dst)
        for name in (rule.in_iface, rule.out_iface):
            if name is not None:
                check_ifname(name)
    else:
        raise InvalidParameterError(f"not a rule: {rule!r}")


def set_name(bridge: str) -> str:
    """The nft set holding ``bridge``'s ports (hex keeps any ifname legal as a set name)."""
    return "ports_" + bridge.encode().hex()


def _placements(rule: Masquerade | Dnat | Filter | DnatExempt) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """``(family, chain, expressions)`` for each nft rule this model rule becomes."""
    if isinstance(rule, DnatExempt):  # inserted at the top of prerouting: ahead of every DNAT
        return [("inet", "prerouting", [_ifname_match("iifname", rule.in_iface), {"return": None}])]
    if isinstance(rule, Masquerade):
        family = _family_of(rule.src) or "ip"
        exprs = [_addr_match("saddr", rule.src, family)]
        if rule.out_iface:
            exprs.append(_ifname_match("oifname", rule.out_iface))
        if rule.not_out_iface:
            exprs.append(_ifname_match("oifname", rule.not_out_iface, "!="))
        return [("inet", "postrouting", [*exprs, {"masquerade": None}])]
    if isinstance(rule, Dnat):
        family = _family_of(rule.to_addr, rule.dst) or "ip"
        nfproto = _match({"meta": {"key": "nfproto"}}, "ipv6" if family == "ip6" else "ipv4")
        dst = (
            _addr_match("daddr", rule.dst, family)
            if rule.dst
            else _match({"fib": {"result": "type", "flags": ["daddr"]}}, "local")
        )
        port = _match({"payload": {"protocol": rule.proto, "field": "dport"}}, rule.dport)
        target = {"dnat": {"family": family, "addr": rule.to_addr, "port": rule.to_port}}
        pre = [nfproto, dst, port, target]
        if rule.not_in_iface:
            pre.insert(0, _ifname_match("iifname", rule.not_in_iface, "!="))
        return [("inet", "prerouting", pre), ("inet", "output", [nfproto, dst, port, target])]
    exprs = []
    if rule.layer == "bridge":
        if rule.in_iface:
            exprs.append(_ifname_match("iifname", "@" + set_name(rule.in_iface)))
        if rule.out_iface:
            exprs.append(_ifname_match("oifname", "@" + set_name(rule.out_iface)))
    else:
        if rule.in_iface:
            exprs.append(_ifname_match("iifname", rule.in_iface))
        if rule.out_iface:
            exprs.append(_ifname_match("oifname", rule.out_iface))
    filter_family = _family_of(rule.src, rule.dst)
    if rule.src and filter_family:
        exprs.append(_addr_match("saddr", rule.src, filter_family))
    if rule.dst and filter_family:
        exprs.append(_addr_match("daddr", rule.dst, filter_family))
    exprs.append({rule.action: None})
    return [("bridge" if rule.layer == "bridge" else "inet", "forward", exprs)]


def _bridges_of(rule: Rule) -> set[str]:
    if isinstance(rule, Filter) and rule.layer == "bridge":
        return {name for name in (rule.in_iface, rule.out_iface) if name}
    return set()


@dataclass
class InstalledRule:
    rule: Rule
    #: (family, chain, handle) of each nft rule it became
    handles: list[tuple[str, str, int]]


@dataclass
class NftNamespace:
    """The rules of one namespace, in insertion order, with their nft handles."""

    ns: str
    #: in insertion order, keyed by the rule: lookups and removals in O(1)
    installed: dict[Rule, InstalledRule] = field(default_factory=dict)
    tables_ready: bool = False
    #: bridge name -> ports last written to its set
    bridge_ports: dict[str, frozenset[str]] = field(default_factory=dict)
    #: bridge name -> how many installed rules use its port set
    bridge_users: Counter[str] = field(default_factory=Counter)
    #: isolation group -> its rule's handle and members (netsim.kernel.linux.nft_isolation)
    isolation: dict[str, nft_isolation.IsolationGroup] = field(default_factory=dict)
    backend: Backend = field(default_factory=default_backend)
    #: the libnftables context, opened with the first batch (it pins the namespace: close() first)
    context: LibNftContext | None = field(default=None, repr=False)

    def _run(self, commands: list[dict[str, Any]], *, echo: bool = False) -> list[dict[str, Any]]:
        if self.backend == "process":
            return run_nft(self.ns, commands, echo=echo)
        if self.context is None:
            library = load_libnft()
            if library is None:
                self.backend = "process"
                return run_nft(self.ns, commands, echo=echo)
            self.context = LibNftContext(library, self.ns)
        return run_nft_library(self.context, commands, echo=echo)

    def close(self) -> None:
        """Release the libnftables context (idempotent); the namespace can then be destroyed."""
        if self.context is not None:
            self.context.close()
            self.context = None

    def rules(self) -> list[Rule]:
        return list(self.installed)

    def flush_left_over(self) -> None:
        """Delete netsim's tables left in an adopted namespace by another process
        (this one has no record of their rules); a missing table is fine."""
        for family in ("inet", "bridge"):
            try:
                self._run([{"delete": {"table": {"family": family, "name": TABLE}}}])
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
        self.installed.clear()
        self.tables_ready = False
        self.bridge_ports.clear()
        self.bridge_users.clear()
        self.isolation.clear()

    def _setup_commands(self) -> list[dict[str, Any]]:
        commands: list[dict[str, Any]] = [
            {"add": {"table": {"family": "inet", "name": TABLE}}},
            {"add": {"table": {"family": "bridge", "name": TABLE}}},
        ]
        for family, name, kind, hook, prio in _CHAINS:
            chain = {"family": family, "table": TABLE, "name": name, "type": kind, "hook": hook, "prio": prio}
            commands.append({"add": {"chain": {**chain, "policy": "accept"}}})
        return commands

    def add(self, rule: Rule, ports: Mapping[str, frozenset[str]]) -> None:
        """Append ``rule``; ``ports`` maps each bridge of the namespace to its ports."""
        validate_rule(rule)
        if rule in self.installed:
            raise kernel_error(errno.EEXIST, f"rule {rule!r} exists in namespace {self.ns!r}")
        if isinstance(rule, Isolated):
            self._add_member(rule)
            return
        commands = [] if self.tables_ready else self._setup_commands()
        new_bridges = sorted(b for b in _bridges_of(rule) if b not in self.bridge_ports)
        for bridge in new_bridges:
            elements = sorted(ports.get(bridge, frozenset()))
            nft_set: dict[str, Any] = {"family": "bridge", "table": TABLE, "name": set_name(bridge), "type": "ifname"}
            if elements:
                nft_set["elem"] = elements
            commands.append({"add": {"set": nft_set}})
        verb = "insert" if isinstance(rule, DnatExempt) else "add"
        for family, chain, exprs in _placements(rule):
            commands.append({verb: {"rule": {"family": family, "table": TABLE, "chain": chain, "expr": exprs}}})
        echoed = self._run(commands, echo=True)
        self.tables_ready = True
        for bridge in new_bridges:
            self.bridge_ports[bridge] = ports.get(bridge, frozenset())
        self.bridge_users.update(_bridges_of(rule))
        # an insert may echo as "insert" or as "add"
        echoed_rules = [
            made["rule"] for item in echoed for made in item.values() if isinstance(made, dict) and "rule" in made
        ]
        handles = [(made["family"], made["chain"], int(made["handle"])) for made in echoed_rules]
        self.installed[rule] = InstalledRule(rule, handles)

    def delete(self, rule: Rule) -> None:
        validate_rule(rule)
        entry = self.installed.get(rule)
        if entry is None:
            raise kernel_error(errno.ENOENT, f"no rule {rule!r} in namespace {self.ns!r}")
        if isinstance(rule, Isolated):
            self._delete_member(rule)
            return
        commands: list[dict[str, Any]] = [
            {"delete": {"rule": {"family": family, "table": TABLE, "chain": chain, "handle": handle}}}
            for family, chain, handle in entry.handles
        ]
        unused = sorted(b for b in _bridges_of(rule) if self.bridge_users[b] <= 1)
        commands += [{"delete": {"set": {"family": "bridge", "table": TABLE, "name": set_name(b)}}} for b in unused]
        self._run(commands)
        del self.installed[rule]
        self.bridge_users.subtract(_bridges_of(rule))
        for bridge in unused:
            self.bridge_ports.pop(bridge, None)
            del self.bridge_users[bridge]

    def _add_member(self, rule: Isolated) -> None:
        """Two set elements; with the group's first member also its sets and rule (one batch)."""
        group = self.isolation.get(rule.group)
        if group is not None:
            self._run(nft_isolation.add_member(rule.group, rule.iface))
            group.members.add(rule.iface)
        else:
            commands = [] if self.tables_ready else self._setup_commands()
            commands += nft_isolation.create_group(rule.group) + nft_isolation.add_member(rule.group, rule.iface)
            echoed = self._run(commands, echo=True)
            self.tables_ready = True
            try:
                handle = nft_isolation.inserted_rule_handle(echoed)
            except LookupError as exc:
                raise kernel_error(errno.EIO, f"nft in namespace {self.ns!r}: {exc}") from exc
            self.isolation[rule.group] = nft_isolation.IsolationGroup(handle, {rule.iface})
        self.installed[rule] = InstalledRule(rule, [])

    def _delete_member(self, rule: Isolated) -> None:
        """Two set elements; with the group's last member also its rule and sets (one batch)."""
        group = self.isolation[rule.group]
        commands = nft_isolation.delete_member(rule.group, rule.iface)
        last = group.members == {rule.iface}
        if last:
            commands += nft_isolation.delete_group(rule.group, group.handle)
        self._run(commands)
        del self.installed[rule]
        group.members.discard(rule.iface)
        if last:
            del self.isolation[rule.group]

    def sync_bridge_ports(self, ports: Mapping[str, frozenset[str]]) -> None:
        """Rewrite the port sets whose bridge gained or lost ports (one nft call, none if unchanged)."""
        commands: list[dict[str, Any]] = []
        for bridge, written in sorted(self.bridge_ports.items()):
            current = ports.get(bridge, frozenset())
            if current == written:
                continue
            name = set_name(bridge)
            commands.append({"flush": {"set": {"family": "bridge", "table": TABLE, "name": name}}})
            if current:
                commands.append(
                    {"add": {"element": {"family": "bridge", "table": TABLE, "name": name, "elem": sorted(current)}}}
                )
        if commands:
            self._run(commands)
            for bridge in self.bridge_ports:
                self.bridge_ports[bridge] = ports.get(bridge, frozenset())
