"""One host of a cluster whose hosts are separate OS processes.

A :class:`ClusterHost` is a :class:`Controller` on its own kernel and local
store, sharing the global store with the other hosts (network definitions,
the global address pool, table events; see :mod:`netsim.cluster.shared`),
with an uplink ``eth1`` on the cluster's underlay bridge. Run as
``python -m netsim.cluster.host CONFIG_JSON`` it serves the
:class:`netsim.cluster.process.ProcessCluster` that started it: one JSON
command per line on stdin, one JSON reply per line on stdout.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sys
import threading
from typing import Any

from netsim.cluster import UNDERLAY_BRIDGE, UNDERLAY_DEV, notify_node, underlay_address
from netsim.cluster.shared import (
    ClusterIpam,
    StoreTableEvents,
    decode_calls,
    definition_key,
    encode_calls,
    get_definition,
    put_definition,
)
from netsim.controller import Controller, ControllerConfig, IpamConfig, PoolConfig
from netsim.errors import ConflictError, InvalidParameterError, NetsimError, NotFoundError
from netsim.kernel.base import Kernel, Listener
from netsim.netlabel import PortBinding
from netsim.store import KVStore, WatchEvent, open_store
from netsim.undo import rollback_on_error

CLUSTER_IPAM = "cluster-default"
NODE_PREFIX = "cluster/node/"


def ipam_config(data: dict[str, Any]) -> IpamConfig:
    """An IpamConfig from its JSON form (``{"pools": [{"subnet", ...}], "options"}``)."""
    pools = [PoolConfig(**pool) for pool in data.get("pools", [])]
    return IpamConfig(driver=CLUSTER_IPAM, pools=pools, options=dict(data.get("options", {})))


class ClusterHost:
    def __init__(
        self,
        kernel: Kernel,
        name: str,
        index: int,
        global_store: str,
        local_store: str | None = None,
        underlay_namespace: str | None = None,
        experimental: bool = False,
    ) -> None:
        self.kernel = kernel
        self.name = name
        self.index = index
        self.global_store: KVStore = open_store(global_store)
        self.events = StoreTableEvents(self.global_store, name)
        self._forced_id: str | None = None
        self._node_lock = threading.Lock()
        overlay = {
            "underlay_dev": UNDERLAY_DEV,
            "underlay_address": underlay_address(index),
            "global_store": self.global_store,
        }
        try:
            self.controller = Controller(
                kernel,
                ControllerConfig(
                    host=name,
                    host_index=index,
                    experimental=experimental,
                    local_store=local_store,
                    global_store=self.global_store,
                    driver_options={"overlay": overlay},
                    id_factory=self._new_id,
                    table_events=self.events,
                    keep_links=(UNDERLAY_DEV,),
                ),
            )
        except BaseException:
            self.global_store.close()
            raise
        try:
            self.ipam = ClusterIpam(self.controller.registry.ipam("default").driver)
            self.controller.registry.register_ipam_driver(CLUSTER_IPAM, self.ipam)
            if underlay_namespace is not None:
                self._plug_underlay(underlay_namespace)
            self.events.start(self.controller)
            self._join_nodes()
        except BaseException:
            self.close()
            raise

    def _join_nodes(self) -> None:
        """Node discovery through the store: this host announces itself under
        ``cluster/node/<name>``, learns the hosts there, and follows them."""
        address = underlay_address(self.index)
        notify_node(self.controller, address, self_node=True)
        self._nodes: dict[str, str] = {}
        self._node_watch = self.global_store.watch(NODE_PREFIX, self._on_node)
        self.global_store.put(f"{NODE_PREFIX}{self.name}", address)
        for pair in self.global_store.list(NODE_PREFIX):
            self._on_node(WatchEvent("put", pair.key, pair.value, pair.version))

    def _on_node(self, event: WatchEvent) -> None:
        name = event.key[len(NODE_PREFIX) :]
        if name == self.name:
            return
        with self._node_lock:
            if event.kind == "put" and event.value is not None and name not in self._nodes:
                self._nodes[name] = event.value
                notify_node(self.controller, event.value)
            elif event.kind == "delete" and name in self._nodes:
                notify_node(self.controller, self._nodes.pop(name), new=False)

    def _new_id(self) -> str:
        return self._forced_id if self._forced_id is not None else secrets.token_hex(32)

    def _plug_underlay(self, underlay: str) -> None:
        kernel, host_ns, port = self.kernel, self.controller.host.namespace, f"ul{self.index}"
        borrow = getattr(kernel, "borrow_namespace", None)
        if borrow is None:
            raise InvalidParameterError(f"a {kernel.kind} kernel cannot reach another process's underlay")
        borrow(underlay)
        if any(link.name == UNDERLAY_DEV for link in kernel.links(host_ns)):
            return  # a restarted host: its uplink is still there
        kernel.add_veth(host_ns, UNDERLAY_DEV, port, peer_ns=underlay)
        kernel.add_address(host_ns, UNDERLAY_DEV, f"{underlay_address(self.index)}/24")
        kernel.set_master(underlay, port, UNDERLAY_BRIDGE)
        kernel.set_link_up(underlay, port)
        kernel.set_link_up(host_ns, UNDERLAY_DEV)

    # --- networks ---------------------------------------------------------------------------------
    def _local_id(self, name: str) -> str | None:
        return self.controller.records.lookup_name("network", name)

    def _create_local(self, definition: dict[str, Any]) -> str:
        self._forced_id = definition["id"]
        try:
            self.controller.create_network(
                definition["name"],
                definition["driver"],
                definition["options"],
                ipam_config(definition["ipam"]),
                False,
                definition["internal"],
                definition["labels"],
            )
        finally:
            self._forced_id = None
        return str(definition["id"])

    def create_network(
        self,
        name: str,
        driver: str = "overlay",
        options: dict[str, str] | None = None,
        ipam: dict[str, Any] | None = None,
        internal: bool = False,
        labels: dict[str, str] | None = None,
    ) -> str:
        """Create a global-scope network here and publish its definition."""
        if self.global_store.exists(definition_key(name)):
            raise ConflictError(f"cluster network {name!r} exists already")
        entry = self.controller.registry.driver(driver)
        if entry.capability.data_scope not in ("global", "swarm"):
            raise InvalidParameterError(
                f"driver {driver!r} has {entry.capability.data_scope} scope: it cannot span hosts"
            )
        nid = secrets.token_hex(32)
        with rollback_on_error() as undo:
            allocated = entry.driver.network_allocate(nid, dict(options or {}), [], [])
            undo.push("network_free", lambda: entry.driver.network_free(nid))
            definition = {
                "name": name,
                "id": nid,
                "driver": driver,
                "options": {**dict(options or {}), **allocated},
                "ipam": dict(ipam or {}),
                "internal": bool(internal),
                "labels": dict(labels or {}),
                "creator": self.name,
            }
            self.ipam.start_recording()
            try:
                self._create_local(definition)
            finally:
                calls = self.ipam.stop_recording()
            self.ipam.note_recorded(calls)
            undo.push("give back the pool", lambda: self.ipam.release_recorded(calls))
            undo.push("delete here", lambda: self.controller.delete_network(nid))
            definition["calls"] = encode_calls(calls)
            put_definition(self.global_store, name, definition)
        return nid

    def ensure_network(self, name: str) -> str:
        """This host's copy of cluster network ``name``, made from its definition if missing."""
        nid = self._local_id(name)
        if nid is not None:
            return nid
        try:
            definition = get_definition(self.global_store, name)
        except NotFoundError:
            raise NotFoundError(f"cluster network {name!r} not found") from None
        calls = decode_calls(definition["calls"])
        self.ipam.start_replay(calls)
        try:
            self._create_local(definition)
        finally:
            self.ipam.stop_replay()
        self.ipam.note_recorded(calls)
        self.events.sync(definition["id"])
        return str(definition["id"])

    def drop_network(self, name: str, last: bool = False) -> None:
        """Delete this host's copy; the ``last`` host also removes the definition
        and gives its pool and VNI back."""
        nid = self._local_id(name)
        if nid is not None:
            self.controller.delete_network(nid)
            self.events.forget(nid)
        if not last:
            return
        definition = get_definition(self.global_store, name)
        self.global_store.delete(definition_key(name))
        problems = self.ipam.release_recorded(decode_calls(definition["calls"]))
        self.controller.registry.driver(definition["driver"]).driver.network_free(definition["id"])
        if problems:
            raise ConflictError(f"cluster network {name!r} deleted, but: {'; '.join(problems)}")

    def endpoint_count(self, name: str) -> int:
        nid = self._local_id(name)
        return 0 if nid is None else len(self.controller.records.endpoints(nid))

    # --- containers ---------------------------------------------------------------------------------
    def connect(self, container: str, network: str, ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        nid = self.ensure_network(network)
        bindings = [PortBinding(**port) for port in ports or []]
        endpoint = self.controller.connect(container, nid, ports=bindings)
        record = self.controller.records.endpoint(nid, endpoint.id)
        return {"endpoint": endpoint.id, "address": record["address"], "address_ipv6": record["address_ipv6"]}

    def disconnect(self, container: str, network: str) -> None:
        nid = self._local_id(network)
        if nid is None:
            raise NotFoundError(f"cluster network {network!r} is not on host {self.name!r}")
        self.controller.disconnect(container, nid)

    def namespace(self, container: str) -> str:
        if container == "outside":
            return self.controller.host.outside_namespace
        if container == "host":
            return self.controller.host.namespace
        return self.controller.sandbox(container).namespace

    def listen(self, container: str, proto: str, port: int) -> None:
        self.kernel.add_listener(self.namespace(container), Listener(proto, port))  # type: ignore[arg-type]

    def probe(self, container: str, dst: str, proto: str = "icmp", port: int | None = None) -> dict[str, Any]:
        from netsim.probe import probe

        result = probe(self.kernel, self.namespace(container), dst, proto, port)
        return {"reachable": result.reachable, "outcome": result.outcome}

    def sync(self) -> int:
        return self.events.sync()

    def remove_containers(self) -> None:
        """Every container of this host leaves its networks and goes (``docker rm -f``)."""
        for sandbox in self.controller.sandboxes():
            self.controller.delete_sandbox(sandbox)

    def close(self) -> None:
        watch = getattr(self, "_node_watch", None)
        if watch is not None:
            watch.cancel()
            with contextlib.suppress(NetsimError):
                self.global_store.delete(f"{NODE_PREFIX}{self.name}")
        self.events.stop()
        try:
            self.controller.close()
        finally:
            self.global_store.close()


# --- the process side ---------------------------------------------------------------------------------
COMMANDS = (
    "create_network",
    "ensure_network",
    "drop_network",
    "endpoint_count",
    "connect",
    "disconnect",
    "namespace",
    "listen",
    "probe",
    "sync",
    "remove_containers",
)


def serve(host: ClusterHost, lines: Any, out: Any) -> None:
    """Answer commands until ``close`` (or end of input): ``{"op", "args"}`` →
    ``{"ok": result}`` or ``{"error": {"type", "message"}}``."""
    for line in lines:
        command = json.loads(line)
        op, args = command.get("op"), command.get("args", {})
        if op == "close":
            break
        try:
            if op not in COMMANDS:
                raise InvalidParameterError(f"unknown cluster host command {op!r}")
            reply: dict[str, Any] = {"ok": getattr(host, op)(**args)}
        except NetsimError as exc:
            reply = {"error": {"type": type(exc).__name__, "message": str(exc)}}
        except Exception as exc:  # a bug here must reach the parent, not kill the host silently
            reply = {"error": {"type": "NetsimError", "message": f"{type(exc).__name__}: {exc}"}}
        out.write(json.dumps(reply) + "\n")
        out.flush()


def main(argv: list[str]) -> int:
    from netsim.kernel import make_kernel

    config = json.loads(argv[0])
    kernel = make_kernel(config["kernel"], config["run_id"])
    try:
        host = ClusterHost(
            kernel,
            config["name"],
            config["index"],
            config["global_store"],
            config.get("local_store"),
            config.get("underlay_namespace"),
            config.get("experimental", False),
        )
    except NetsimError as exc:
        print(json.dumps({"error": {"type": type(exc).__name__, "message": str(exc)}}), flush=True)
        kernel.close()
        return 1
    try:
        print(json.dumps({"ok": "ready"}), flush=True)
        serve(host, sys.stdin, sys.stdout)
    finally:
        try:
            host.close()
        finally:
            kernel.close()
    print(json.dumps({"ok": "closed"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
