"""A scenario's topology as a text tree, Graphviz dot, Mermaid or SVG.

Drawn from the file alone (nothing is built): dynamic addresses show as
``dynamic``. The SVG is laid out by hand (outside | networks | containers in
three columns) so there is no Graphviz dependency.
"""

from __future__ import annotations

from html import escape

from netsim.scenario.model import Attachment, ContainerSpec, NetworkSpec, Scenario

FORMATS = ("text", "dot", "svg", "mermaid")
#: what a multi-host scenario's hosts share (see netsim.cluster): a bridge in its own namespace
UNDERLAY_LABEL = "underlay br0 198.19.0.0/24"


def _vtep(scenario: Scenario, host: str) -> str:
    """``eth1 198.19.0.2``: the host's underlay address, as the cluster assigns it
    (host n gets .n+2; kept in step with netsim.cluster.underlay_address by a test)."""
    return f"eth1 198.19.0.{scenario.hosts.index(host) + 2}"


def _host_title(scenario: Scenario, host: str) -> str:
    return f"host {host} (underlay {_vtep(scenario, host)})" if scenario.multi_host else f"host {host}"


def _net_label(net: NetworkSpec) -> str:
    parts = [net.driver]
    ipam = net.ipam
    if ipam.subnet:
        parts.append(ipam.subnet)
    if ipam.ip_range:
        parts.append(f"range {ipam.ip_range}")
    if ipam.gateway:
        parts.append(f"gw {ipam.gateway}")
    if ipam.subnet_v6:
        parts.append(ipam.subnet_v6)
    if ipam.gateway_v6:
        parts.append(f"gw {ipam.gateway_v6}")
    parts += ["global"] * net.is_global + ["internal"] * net.internal
    parts += ["ipv6"] if net.ipv6 and not ipam.subnet_v6 else []
    parts += [f"{k.rsplit('.', 1)[-1]}={v}" for k, v in sorted(net.options.items())]
    return ", ".join(parts)


def _addresses(att: Attachment) -> str:
    addrs = [a for a in (att.ip, att.ipv6) if a] or ["dynamic"]
    return " ".join(addrs) + (f" mac {att.mac}" if att.mac else "")


def _ctr_extras(ctr: ContainerSpec) -> str:
    extras = []
    if ctr.listen:
        extras.append("listens " + " ".join(map(str, ctr.listen)))
    if ctr.publish:
        extras.append("publishes " + " ".join(map(str, ctr.publish)))
    return f" ({'; '.join(extras)})" if extras else ""


def render_text(scenario: Scenario) -> str:
    """hosts → networks → containers, with addresses and published ports."""
    lines = [
        f"scenario {scenario.name}" + (f": {scenario.description.splitlines()[0]}" if scenario.description else "")
    ]
    # (network, host) → member lines in file order: one pass over the containers, not one per network
    members_of: dict[tuple[str, str], list[str]] = {}
    for c in scenario.containers:
        for a in c.networks:
            members_of.setdefault((a.network, c.host), []).append(f"{c.name} {_addresses(a)}{_ctr_extras(c)}")
    for h_index, host in enumerate(scenario.hosts):
        last_host = h_index == len(scenario.hosts) - 1
        last_host = last_host and not scenario.multi_host
        lines.append(("└── " if last_host else "├── ") + _host_title(scenario, host))
        pad = "    " if last_host else "│   "
        nets = [n for n in scenario.networks if n.on_host(host)]
        loose = [c for c in scenario.containers if c.host == host and not c.networks]
        branches: list[tuple[str, list[str]]] = []
        for net in nets:
            members = members_of.get((net.name, host), [])
            branches.append((f"network {net.name} ({_net_label(net)})", members))
        if loose:
            branches.append(("no network", [f"{c.name} (loopback only){_ctr_extras(c)}" for c in loose]))
        for b_index, (title, members) in enumerate(branches):
            last = b_index == len(branches) - 1
            lines.append(pad + ("└── " if last else "├── ") + title)
            inner = pad + ("    " if last else "│   ")
            lines += [inner + ("└── " if m == len(members) - 1 else "├── ") + text for m, text in enumerate(members)]
    if scenario.multi_host:
        overlays = [n.name for n in scenario.networks if n.is_global]
        carried = f"; VXLAN udp/4789 carries {', '.join(overlays)}" if overlays else ""
        lines.append(f"└── {UNDERLAY_LABEL}: " + ", ".join(scenario.hosts) + carried + _membership(scenario))
    return "\n".join(lines)


def _membership(scenario: Scenario) -> str:
    """``; steps: h3 joins, h2 leaves``: the hosts ``add_host``/``remove_host`` steps change."""
    verbs = {"add_host": "joins", "remove_host": "leaves"}
    changes = [f"{step.host} {verbs[step.action]}" for step in scenario.steps if step.action in verbs]
    return f"; steps: {', '.join(changes)}" if changes else ""


def _dot_quote(text: str) -> str:
    """A dot string literal; a newline becomes dot's ``\\n`` line break."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render_dot(scenario: Scenario) -> str:
    lines = [
        f"graph {_dot_quote(scenario.name)} {{",
        "  rankdir=LR;",
        '  outside [shape=doublecircle, label="outside"];',
    ]
    if scenario.multi_host:
        lines.append(f"  underlay [shape=box, style=bold, label={_dot_quote(UNDERLAY_LABEL)}];")
    for net in (n for n in scenario.networks if n.is_global):
        label = f"{net.name}\n{_net_label(net)}"
        lines.append(f"  {_dot_quote('net:' + net.name)} [shape=ellipse, style=dashed, label={_dot_quote(label)}];")
    for host in scenario.hosts:
        lines.append(f"  subgraph {_dot_quote('cluster_' + host)} {{")
        lines.append(f"    label={_dot_quote(_host_title(scenario, host))};")
        if scenario.multi_host:
            vtep = _dot_quote("vtep:" + host)
            lines.append(f"    {vtep} [shape=point, xlabel={_dot_quote(_vtep(scenario, host))}];")
        for net in (n for n in scenario.networks if n.host == host and not n.is_global):
            label = f"{net.name}\n{_net_label(net)}"
            lines.append(f"    {_dot_quote('net:' + net.name)} [shape=ellipse, label={_dot_quote(label)}];")
        for ctr in (c for c in scenario.containers if c.host == host):
            lines.append(f"    {_dot_quote('ctr:' + ctr.name)} [shape=box, label={_dot_quote(ctr.name)}];")
        lines.append("  }")
    for host in scenario.hosts if scenario.multi_host else ():
        lines.append(f"  {_dot_quote('vtep:' + host)} -- underlay;")
        for net in (n for n in scenario.networks if n.is_global):
            lines.append(f"  {_dot_quote('net:' + net.name)} -- {_dot_quote('vtep:' + host)} [style=dotted];")
    for ctr in scenario.containers:
        for att in ctr.networks:
            ends = f"{_dot_quote('ctr:' + ctr.name)} -- {_dot_quote('net:' + att.network)}"
            lines.append(f"  {ends} [label={_dot_quote(_addresses(att))}];")
        for pub in ctr.publish:
            lines.append(f"  outside -- {_dot_quote('ctr:' + ctr.name)} [style=dashed, label={_dot_quote(str(pub))}];")
    lines.append("}")
    return "\n".join(lines)


def _mermaid_id(kind: str, name: str) -> str:
    return kind + "_" + "".join(ch if ch.isalnum() else "_" for ch in name)


def render_mermaid(scenario: Scenario) -> str:
    lines = ["graph LR", "  outside((outside))"]
    if scenario.multi_host:
        lines.append(f'  underlay[["{UNDERLAY_LABEL}"]]')
    for net in (n for n in scenario.networks if n.is_global):
        lines.append(f'  {_mermaid_id("net", net.name)}(["{net.name}: {_net_label(net)}"])')
    for host in scenario.hosts:
        lines.append(f'  subgraph {_mermaid_id("host", host)}["{_host_title(scenario, host)}"]')
        if scenario.multi_host:
            lines.append(f'    {_mermaid_id("vtep", host)}(("{_vtep(scenario, host)}"))')
        for net in (n for n in scenario.networks if n.host == host and not n.is_global):
            lines.append(f'    {_mermaid_id("net", net.name)}(["{net.name}: {_net_label(net)}"])')
        for ctr in (c for c in scenario.containers if c.host == host):
            lines.append(f'    {_mermaid_id("ctr", ctr.name)}["{ctr.name}"]')
        lines.append("  end")
    for host in scenario.hosts if scenario.multi_host else ():
        lines.append(f"  {_mermaid_id('vtep', host)} --- underlay")
        for net in (n for n in scenario.networks if n.is_global):
            lines.append(f"  {_mermaid_id('net', net.name)} -.- {_mermaid_id('vtep', host)}")
    for ctr in scenario.containers:
        for att in ctr.networks:
            lines.append(f'  {_mermaid_id("ctr", ctr.name)} ---|"{_addresses(att)}"| {_mermaid_id("net", att.network)}')
        for pub in ctr.publish:
            lines.append(f'  outside -.-|"{pub}"| {_mermaid_id("ctr", ctr.name)}')
    return "\n".join(lines)


def render_svg(scenario: Scenario) -> str:
    """Three columns: outside, networks, containers; lines carry addresses."""
    row, col_x, box_w, box_h = 70, (20, 300, 640), 240, 44
    nets = list(scenario.networks)
    ctrs = list(scenario.containers)
    height = max(len(nets), len(ctrs), 2 if scenario.multi_host else 1) * row + 80
    net_y = {n.name: 60 + i * row for i, n in enumerate(nets)}
    ctr_y = {c.name: 60 + i * row for i, c in enumerate(ctrs)}
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{col_x[2] + box_w + 20}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f"<title>{escape(scenario.name)}</title>",
        f'<text x="20" y="24" font-size="16" font-weight="bold">{escape(scenario.name)}</text>',
    ]

    def box(x: int, y: int, text: str, sub: str, fill: str, rounded: int) -> None:
        out.append(
            f'<rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" rx="{rounded}" fill="{fill}" stroke="#333"/>'
        )
        out.append(f'<text x="{x + 8}" y="{y + 18}" font-weight="bold">{escape(text)}</text>')
        out.append(f'<text x="{x + 8}" y="{y + 35}" font-size="10">{escape(sub[:44])}</text>')

    labels: list[str] = []

    def line(x1: int, y1: int, x2: int, y2: int, label: str, dashed: bool) -> None:
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        out.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#555"{dash}/>')
        # near the container end, drawn after the boxes with a white halo so nothing hides it
        at_x, at_y = x2 - 6, y1 + (y2 - y1) * 9 // 10 - 4
        halo = 'stroke="white" stroke-width="3" paint-order="stroke"'
        labels.append(f'<text x="{at_x}" y="{at_y}" font-size="10" text-anchor="end" {halo}>{escape(label)}</text>')

    for ctr in ctrs:
        cy = ctr_y[ctr.name] + box_h // 2
        for att in ctr.networks:
            line(col_x[1] + box_w, net_y[att.network] + box_h // 2, col_x[2], cy, _addresses(att), False)
        for pub in ctr.publish:
            line(col_x[0] + box_w, 60 + box_h // 2, col_x[2], cy, str(pub), True)
    if scenario.multi_host:  # the underlay under "outside"; overlays ride on it
        under_y = 60 + row
        for net in (n for n in nets if n.is_global):
            line(col_x[0] + box_w, under_y + box_h // 2, col_x[1], net_y[net.name] + box_h // 2, "vxlan", True)
        hosts = ", ".join(f"{h} {_vtep(scenario, h).split()[1]}" for h in scenario.hosts)
        box(col_x[0], under_y, "underlay (br0 198.19.0.0/24)", hosts, "#e6f2e6", 4)
    box(col_x[0], 60, "outside", "the world beyond the host", "#eeeeee", 22)
    for net in nets:
        where = "all hosts" if net.is_global else net.host
        box(col_x[1], net_y[net.name], f"{net.name} [{where}]", _net_label(net), "#dde8ff", 22)
    for ctr in ctrs:
        box(col_x[2], ctr_y[ctr.name], f"{ctr.name} [{ctr.host}]", _ctr_extras(ctr).strip(" ()"), "#fff4d6", 4)
    out += labels
    out.append("</svg>")
    return "\n".join(out)


def render(scenario: Scenario, fmt: str) -> str:
    renderers = {"text": render_text, "dot": render_dot, "svg": render_svg, "mermaid": render_mermaid}
    return renderers[fmt](scenario)
