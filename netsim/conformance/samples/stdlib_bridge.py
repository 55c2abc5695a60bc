#!/usr/bin/env python3
"""A Docker network and IPAM plugin in nothing but Python's standard library.

It imports nothing of netsim on purpose: it stands for a plugin written in
any language, and shows the whole contract a plugin author has to meet.

    python3 stdlib_bridge.py --name sbridge          # /run/docker/plugins/sbridge.sock
    python3 stdlib_bridge.py --name sbridge --tcp    # /etc/docker/plugins/sbridge.spec

Networks are Linux bridges (``sb`` + network id) with the gateway address;
endpoints are veth pairs (``sv``/``sc`` + endpoint id) whose host side is a
port of the bridge; the container side is what Join hands to the engine.
Separate networks are isolated by one nftables forward rule per network
(table ``inet sbridge``, removed with the last network). All kernel work is
``ip`` and ``nft`` run with argument lists, in whatever network namespace
this process runs in (netsim starts it inside the simulated host).
IPAM: pools as requested (or 10.123.N.0/24 when none is), first-free
addresses, network and broadcast reserved.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

PLUGIN_DIR = "/run/docker/plugins"
SPEC_DIR = "/etc/docker/plugins"
CONTENT_TYPE = "application/vnd.docker.plugins.v1+json"
GATEWAY_REQUEST = ("RequestAddressType", "com.docker.network.gateway")
Reply = dict[str, Any]


class PluginFailure(Exception):
    """Answered as HTTP 500 with ``{"Err": message}`` (what Docker's helpers do)."""


def run(*argv: str, stdin: str | None = None) -> None:
    done = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PluginFailure(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")


def mac_for(address: str) -> str:
    """Docker's generated MAC: 02:42 and the IPv4 address's four bytes."""
    packed = ipaddress.ip_interface(address).ip.packed
    return "02:42:" + ":".join(f"{byte:02x}" for byte in packed[-4:])


class Bridges:
    """The NetworkDriver side: state in memory, effects in the kernel."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.networks: dict[str, dict[str, str]] = {}  # nid -> {"bridge", "gateway"}
        self.endpoints: dict[str, dict[str, str]] = {}  # eid -> {"network", "host", "container"}

    def create_network(self, req: Reply) -> Reply:
        nid = req["NetworkID"]
        v4 = (req.get("IPv4Data") or [{}])[0]
        bridge = "sb" + nid[:12]
        with self.lock:
            if nid in self.networks:
                raise PluginFailure(f"network {nid} exists")
            run("ip", "link", "add", bridge, "type", "bridge")
            try:
                gateway = v4.get("Gateway") or ""
                if gateway:
                    run("ip", "address", "add", gateway, "dev", bridge)
                run("ip", "link", "set", bridge, "up")
                self.networks[nid] = {"bridge": bridge, "gateway": gateway.split("/")[0]}
                self._isolate()
            except BaseException:
                self.networks.pop(nid, None)
                run("ip", "link", "delete", bridge)
                raise
        return {}

    def delete_network(self, req: Reply) -> Reply:
        with self.lock:
            network = self.networks.pop(req["NetworkID"], None)
            if network is None:
                raise PluginFailure(f"network {req['NetworkID']} not found")
            run("ip", "link", "delete", network["bridge"])
            self._isolate()
        return {}

    def _isolate(self) -> None:
        """One forward rule per network: nothing routes from its bridge to another's."""
        script = "add table inet sbridge\ndelete table inet sbridge\n"
        if self.networks:
            rules = "".join(
                f'    iifname "{n["bridge"]}" oifname != "{n["bridge"]}" oifname "sb*" drop\n'
                for n in self.networks.values()
            )
            script += (
                "table inet sbridge {\n  chain forward {\n"
                "    type filter hook forward priority 0; policy accept;\n" + rules + "  }\n}\n"
            )
        run("nft", "-f", "-", stdin=script)

    def create_endpoint(self, req: Reply) -> Reply:
        nid, eid = req["NetworkID"], req["EndpointID"]
        iface = req.get("Interface") or {}
        host, container = "sv" + eid[:12], "sc" + eid[:12]
        with self.lock:
            network = self.networks.get(nid)
            if network is None:
                raise PluginFailure(f"network {nid} not found")
            if eid in self.endpoints:
                raise PluginFailure(f"endpoint {eid} exists")
            self.endpoints[eid] = {"network": nid, "host": host, "container": container}
        mac = iface.get("MacAddress") or (mac_for(iface["Address"]) if iface.get("Address") else "")
        try:
            run("ip", "link", "add", host, "type", "veth", "peer", "name", container)
            if mac:
                run("ip", "link", "set", container, "address", mac)
            run("ip", "link", "set", host, "master", network["bridge"], "up")
        except BaseException:
            with self.lock:
                del self.endpoints[eid]
            subprocess.run(["ip", "link", "delete", host], capture_output=True, check=False)
            raise
        return {"Interface": {"MacAddress": mac}} if mac and not iface.get("MacAddress") else {}

    def delete_endpoint(self, req: Reply) -> Reply:
        with self.lock:
            endpoint = self.endpoints.pop(req["EndpointID"], None)
        if endpoint is None:
            raise PluginFailure(f"endpoint {req['EndpointID']} not found")
        # gone already if the engine deleted the container side with its sandbox
        subprocess.run(["ip", "link", "delete", endpoint["host"]], capture_output=True, check=False)
        return {}

    def join(self, req: Reply) -> Reply:
        with self.lock:
            endpoint = self.endpoints.get(req["EndpointID"])
            if endpoint is None:
                raise PluginFailure(f"endpoint {req['EndpointID']} not found")
            gateway = self.networks[endpoint["network"]]["gateway"]
        reply: Reply = {"InterfaceName": {"SrcName": endpoint["container"], "DstPrefix": "eth"}}
        if gateway:
            reply["Gateway"] = gateway
        return reply

    def known_endpoint(self, req: Reply) -> Reply:
        with self.lock:
            if req["EndpointID"] not in self.endpoints:
                raise PluginFailure(f"endpoint {req['EndpointID']} not found")
        return {}


class Pools:
    """The IpamDriver side: first-free addresses from requested pools."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pools: dict[str, tuple[ipaddress.IPv4Network, set[ipaddress.IPv4Address]]] = {}

    def request_pool(self, req: Reply) -> Reply:
        if req.get("V6"):
            raise PluginFailure("this plugin has no IPv6 pools")
        with self.lock:
            taken = [net for net, _ in self.pools.values()]
            if req.get("Pool"):
                pool = ipaddress.IPv4Network(req["Pool"])
                if any(pool.overlaps(net) for net in taken):
                    raise PluginFailure(f"pool {pool} overlaps a pool in use")
            else:
                free = (ipaddress.IPv4Network(f"10.123.{n}.0/24") for n in range(256))
                found = next((net for net in free if not any(net.overlaps(t) for t in taken)), None)
                if found is None:
                    raise PluginFailure("no free pool left in 10.123.0.0/16")
                pool = found
            pool_id = f"sbridge/{pool}"
            self.pools[pool_id] = (pool, {pool.network_address, pool.broadcast_address})
        return {"PoolID": pool_id, "Pool": str(pool), "Data": {}}

    def release_pool(self, req: Reply) -> Reply:
        with self.lock:
            if self.pools.pop(req["PoolID"], None) is None:
                raise PluginFailure(f"pool {req['PoolID']} not found")
        return {}

    def request_address(self, req: Reply) -> Reply:
        with self.lock:
            if req["PoolID"] not in self.pools:
                raise PluginFailure(f"pool {req['PoolID']} not found")
            pool, used = self.pools[req["PoolID"]]
            if req.get("Address"):
                address = ipaddress.IPv4Address(req["Address"])
                if address not in pool:
                    raise PluginFailure(f"{address} is out of range of {pool}")
                if address in used:
                    raise PluginFailure(f"{address} is already allocated")
            else:
                found = next((a for a in pool.hosts() if a not in used), None)
                if found is None:
                    raise PluginFailure(f"no address left in {pool}")
                address = found
            used.add(address)
        return {"Address": f"{address}/{pool.prefixlen}", "Data": {}}

    def release_address(self, req: Reply) -> Reply:
        with self.lock:
            if req["PoolID"] in self.pools:
                self.pools[req["PoolID"]][1].discard(ipaddress.IPv4Address(req["Address"]))
        return {}


def routes(bridges: Bridges, pools: Pools) -> dict[str, Callable[[Reply], Reply]]:
    def constant(reply: Reply) -> Callable[[Reply], Reply]:
        return lambda _req: reply

    return {
        "Plugin.Activate": constant({"Implements": ["NetworkDriver", "IpamDriver"]}),
        "NetworkDriver.GetCapabilities": constant({"Scope": "local", "ConnectivityScope": "local"}),
        "NetworkDriver.CreateNetwork": bridges.create_network,
        "NetworkDriver.DeleteNetwork": bridges.delete_network,
        "NetworkDriver.CreateEndpoint": bridges.create_endpoint,
        "NetworkDriver.DeleteEndpoint": bridges.delete_endpoint,
        "NetworkDriver.EndpointOperInfo": lambda req: {"Value": {}} if bridges.known_endpoint(req) == {} else {},
        "NetworkDriver.Join": bridges.join,
        "NetworkDriver.Leave": bridges.known_endpoint,
        "NetworkDriver.DiscoverNew": constant({}),
        "NetworkDriver.DiscoverDelete": constant({}),
        "IpamDriver.GetCapabilities": constant({"RequiresMACAddress": False, "RequiresRequestReplay": False}),
        "IpamDriver.GetDefaultAddressSpaces": constant(
            {"LocalDefaultAddressSpace": "sblocal", "GlobalDefaultAddressSpace": "sbglobal"}
        ),
        "IpamDriver.RequestPool": pools.request_pool,
        "IpamDriver.ReleasePool": pools.release_pool,
        "IpamDriver.RequestAddress": pools.request_address,
        "IpamDriver.ReleaseAddress": pools.release_address,
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    calls: dict[str, Callable[[Reply], Reply]] = {}

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        call = self.calls.get(self.path.lstrip("/"))
        if call is None:
            self.reply(404, {"Err": f"{self.path}: not implemented"})
            return
        try:
            request = json.loads(raw) if raw.strip() else {}
            self.reply(200, call(request))
        except (PluginFailure, KeyError, ValueError, TypeError) as exc:
            self.reply(500, {"Err": str(exc)})

    def reply(self, status: int, body: Reply) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def address_string(self) -> str:
        return "engine"

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write("sbridge: " + format % args + "\n")


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = socket.SOMAXCONN


class TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = socket.SOMAXCONN


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="sbridge", help="plugin name (socket or spec file name)")
    parser.add_argument("--tcp", action="store_true", help="listen on 127.0.0.1 and write a .spec file")
    args = parser.parse_args()
    Handler.calls = routes(Bridges(), Pools())
    server: socketserver.BaseServer
    if args.tcp:
        server = TCPServer(("127.0.0.1", 0), Handler)
        path = os.path.join(SPEC_DIR, f"{args.name}.spec")
        with open(path, "w", encoding="ascii") as spec:
            spec.write(f"tcp://127.0.0.1:{server.server_address[1]}\n")
    else:
        path = os.path.join(PLUGIN_DIR, f"{args.name}.sock")
        if os.path.exists(path):
            os.unlink(path)
        server = UnixServer(path, Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"sbridge: serving {args.name} at {path}", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.02)
    finally:
        server.server_close()
        os.unlink(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
