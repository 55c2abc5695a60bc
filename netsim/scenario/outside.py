"""The world beyond a host as a server: ``outside: {listen: [...]}``.

```yaml
outside:
  listen: [tcp/80, udp/53]            # the outside of every host answers on these
hosts:
  - h1
  - {name: h2, outside: {listen: [tcp/443]}}   # and the outside of h2 on this too
expect:
  - {from: web, to: outside, proto: tcp, port: 80}          # egress over TCP
  - {from: web, to: outside, proto: tcp, port: 443, reachable: false, outcome: rst}
```

Each listed port gets a listener in the host's outside namespace, on every
IPv4 address and every IPv6 address, exactly as a container's ``listen:``
(TCP accepts, UDP echoes). An expectation that TCP or UDP to an outside
reaches a port nobody listens on there can never hold and is refused at load
(:func:`outside_listens`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from netsim.kernel.base import Kernel, Listener
from netsim.scenario.model import ListenSpec, Scenario
from netsim.scenario.plugins import ShapeReader

#: parse one ``tcp/80`` entry at a key path (the schema's own listener reader)
ParseListen = Callable[[object, str], ListenSpec]


def parse_outside(
    rd: ShapeReader,
    value: object,
    host_entries: list[object],
    hosts: tuple[str, ...],
    parse_listen: ParseListen,
) -> dict[str, tuple[ListenSpec, ...]]:
    """Host → its outside's listeners, from the top-level ``outside:`` (every
    host) and each ``hosts[i].outside`` (that host), duplicates refused."""
    everywhere = _listen_list(rd, value, "outside", parse_listen) if value is not None else []
    result: dict[str, tuple[ListenSpec, ...]] = {}
    for index, host in enumerate(hosts):
        entry = host_entries[index] if index < len(host_entries) else None
        own: list[tuple[ListenSpec, str]] = []
        if isinstance(entry, Mapping) and entry.get("outside") is not None:
            own = _listen_list(rd, entry["outside"], f"hosts[{index}].outside", parse_listen)
        seen: dict[ListenSpec, str] = {}
        for spec, path in [*everywhere, *own]:
            if spec in seen:
                rd.fail(path, f"duplicate listener {spec} on the outside of {host!r} (also {seen[spec]})")
            seen[spec] = path
        if seen:
            result[host] = tuple(seen)
    return result


def _listen_list(rd: ShapeReader, value: object, path: str, parse_listen: ParseListen) -> list[tuple[ListenSpec, str]]:
    raw = rd.mapping(value, path, ("listen",))
    items = rd.seq(raw.get("listen"), f"{path}.listen")
    return [(parse_listen(item, f"{path}.listen[{i}]"), f"{path}.listen[{i}]") for i, item in enumerate(items)]


def outside_listens(scenario: Scenario, host: str, proto: str, port: int) -> bool:
    """Whether the outside of ``host`` listens on ``proto/port``."""
    return any((spec.proto, spec.port) == (proto, port) for spec in scenario.outside_listen.get(host, ()))


class OutsideListeners:
    """The listeners a scenario puts in its hosts' outside namespaces; ``stop`` removes them."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self._running: list[tuple[str, Listener]] = []

    def start(self, scenario: Scenario, outside_namespaces: Mapping[str, str]) -> None:
        """The listeners beyond every host built now (hosts that join later: :meth:`start_host`)."""
        for host, ns in outside_namespaces.items():
            self.start_host(scenario, host, ns)

    def start_host(self, scenario: Scenario, host: str, ns: str) -> None:
        for spec in scenario.outside_listen.get(host, ()):
            # one socket per family, as a container's listeners: "::" is IPv6-only on Linux
            for any_addr in ("0.0.0.0", "::"):
                listener = Listener(proto=spec.proto, port=spec.port, addr=any_addr)
                self.kernel.add_listener(ns, listener)
                self._running.append((ns, listener))

    def stop_host(self, ns: str) -> None:
        """Remove the listeners in one outside namespace (its host is leaving:
        an open socket would keep the namespace alive on Linux)."""
        for ns_of, listener in [entry for entry in reversed(self._running) if entry[0] == ns]:
            self.kernel.delete_listener(ns_of, listener)
            self._running.remove((ns_of, listener))

    def stop(self) -> list[str]:
        """Remove every listener (last first); report what failed, keep going."""
        problems: list[str] = []
        while self._running:
            ns, listener = self._running.pop()
            try:
                self.kernel.delete_listener(ns, listener)
            except Exception as exc:  # teardown goes on: the leak check reports what stayed
                problems.append(f"outside listener {listener.proto}/{listener.port} in {ns}: {exc}")
        return problems
