"""The normalized snapshot both kernels share (see Kernel.snapshot)."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from netsim.kernel.base import Kernel


def _is_link_local(cidr_or_ip: str) -> bool:
    return cidr_or_ip.lower().startswith("fe80:")


def build_snapshot(kernel: Kernel) -> dict[str, Any]:
    macs = kernel.explicit_macs()
    out: dict[str, Any] = {}
    for ns in kernel.namespaces():
        links = []
        for link in kernel.links(ns):
            entry = asdict(link)
            del entry["ifindex"]
            entry["mac"] = macs.get((ns, link.name))
            entry["attrs"] = dict(sorted(link.attrs.items()))
            entry["peer"] = list(link.peer) if link.peer else None
            links.append(entry)
        out[ns] = {
            "links": links,
            "addresses": [[d, c] for d, c in kernel.addresses(ns) if not _is_link_local(c)],
            "routes": sorted(
                (asdict(r) for r in kernel.routes(ns) if not _is_link_local(r.dst)),
                key=lambda r: (r["family"], r["dst"], r["metric"], str(r["dev"]), str(r["via"])),
            ),
            "neighbours": sorted((asdict(n) for n in kernel.neighbours(ns) if n.permanent), key=str),
            "fdb": sorted((asdict(f) for f in kernel.fdb(ns) if f.permanent), key=str),
            "rules": [{"type": type(r).__name__, **asdict(r)} for r in kernel.rules(ns)],
            "listeners": sorted((asdict(lst) for lst in kernel.listeners(ns)), key=str),
            "sysctls": {
                key: kernel.get_sysctl(ns, key) for key in ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding")
            },
        }
    return out
