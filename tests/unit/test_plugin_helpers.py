"""Helpers shared by the plugin/remote tests (imported as ``test_plugin_helpers``):
an in-memory Driver and Ipam to serve, and ``FakePlugin``, a deliberately
bare socket server whose replies a test scripts byte for byte (to misbehave
in ways a real HTTP server would not)."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from netsim.driverapi import (
    NEXTHOP,
    Capability,
    DiscoveryType,
    Driver,
    InterfaceInfo,
    IPAMData,
    JoinInfo,
    NetworkInfo,
)
from netsim.errors import ConflictError, InvalidParameterError, NoSpaceError, NotFoundError
from netsim.ipamapi import LOCAL_DEFAULT, Ipam, IpamCapability


@contextlib.contextmanager
def short_dir() -> Iterator[Path]:
    """A short temporary directory: unix socket paths must fit in 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="nsp", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class MemoryDriver(Driver):
    """A small but strict network driver keeping everything in dicts."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.networks: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[tuple[str, str], dict[str, Any]] = {}
        self.allocated: set[str] = set()
        self.discoveries: list[tuple[int, Any]] = []
        self.external: set[tuple[str, str]] = set()

    def state(self) -> dict[str, Any]:
        with self.lock:
            return json.loads(
                json.dumps(
                    {
                        "networks": self.networks,
                        "endpoints": {f"{n}/{e}": v for (n, e), v in self.endpoints.items()},
                        "allocated": sorted(self.allocated),
                        "external": sorted(f"{n}/{e}" for n, e in self.external),
                    },
                    default=str,
                )
            )

    def network_allocate(
        self, nid: str, options: Mapping[str, str], ipv4_data: Sequence[IPAMData], ipv6_data: Sequence[IPAMData]
    ) -> dict[str, str]:
        with self.lock:
            if nid in self.allocated:
                raise ConflictError(f"network {nid} already allocated")
            self.allocated.add(nid)
            return {"vni": str(len(self.allocated)), **dict(options)}

    def network_free(self, nid: str) -> None:
        with self.lock:
            if nid not in self.allocated:
                raise NotFoundError(f"network {nid} not allocated")
            self.allocated.discard(nid)

    def create_network(
        self,
        nid: str,
        options: Mapping[str, Any],
        ninfo: NetworkInfo,
        ipv4_data: Sequence[IPAMData],
        ipv6_data: Sequence[IPAMData],
    ) -> None:
        with self.lock:
            if nid in self.networks:
                raise ConflictError(f"network {nid} exists")
            if options.get("bad") is not None:
                raise InvalidParameterError(f"invalid option bad={options['bad']!r}")
            self.networks[nid] = {
                "options": dict(options),
                "ipv4": [d.to_json() for d in ipv4_data],
                "ipv6": [d.to_json() for d in ipv6_data],
            }

    def delete_network(self, nid: str) -> None:
        with self.lock:
            if nid not in self.networks:
                raise NotFoundError(f"network {nid} not found")
            if any(n == nid for n, _ in self.endpoints):
                raise ConflictError(f"network {nid} has endpoints")
            del self.networks[nid]

    def create_endpoint(self, nid: str, eid: str, ifinfo: InterfaceInfo, options: Mapping[str, Any]) -> None:
        with self.lock:
            if nid not in self.networks:
                raise NotFoundError(f"network {nid} not found")
            if (nid, eid) in self.endpoints:
                raise ConflictError(f"endpoint {eid} exists")
            if ifinfo.mac_address is None:
                ifinfo.set_mac_address("02:42:" + ":".join(f"{b:02x}" for b in eid.encode().ljust(4, b"0")[:4]))
            if ifinfo.address_ipv6 is None and options.get("v6"):
                ifinfo.set_ip_address(ipaddress.ip_interface(str(options["v6"])))
            self.endpoints[(nid, eid)] = {
                "mac": ifinfo.mac_address,
                "address": str(ifinfo.address),
                "address_ipv6": str(ifinfo.address_ipv6),
                "joined": None,
            }

    def _endpoint(self, nid: str, eid: str) -> dict[str, Any]:
        try:
            return self.endpoints[(nid, eid)]
        except KeyError:
            raise NotFoundError(f"endpoint {nid}/{eid} not found") from None

    def delete_endpoint(self, nid: str, eid: str) -> None:
        with self.lock:
            if self._endpoint(nid, eid)["joined"]:
                raise ConflictError(f"endpoint {eid} is joined")
            del self.endpoints[(nid, eid)]

    def endpoint_oper_info(self, nid: str, eid: str) -> dict[str, Any]:
        with self.lock:
            return {"mac": self._endpoint(nid, eid)["mac"], "count": len(self.endpoints)}

    def join(self, nid: str, eid: str, sbox_key: str, jinfo: JoinInfo, options: Mapping[str, Any]) -> None:
        with self.lock:
            ep = self._endpoint(nid, eid)
            if ep["joined"]:
                raise ConflictError(f"endpoint {eid} already joined")
            ep["joined"] = sbox_key
            jinfo.set_names(f"veth{eid[:8]}", "eth")
            v4 = self.networks[nid]["ipv4"]
            if v4 and v4[0]["Gateway"]:
                gateway = ipaddress.ip_interface(v4[0]["Gateway"]).ip
                assert isinstance(gateway, ipaddress.IPv4Address)
                jinfo.set_gateway(gateway)
                jinfo.add_static_route(ipaddress.ip_network("198.18.0.0/15"), NEXTHOP, gateway)
            if options.get("nogw"):
                jinfo.disable_gateway_service()

    def leave(self, nid: str, eid: str) -> None:
        with self.lock:
            ep = self._endpoint(nid, eid)
            if not ep["joined"]:
                raise ConflictError(f"endpoint {eid} is not joined")
            ep["joined"] = None

    def program_external_connectivity(self, nid: str, eid: str, options: Mapping[str, Any]) -> None:
        with self.lock:
            self._endpoint(nid, eid)
            self.external.add((nid, eid))

    def revoke_external_connectivity(self, nid: str, eid: str) -> None:
        with self.lock:
            self.external.discard((nid, eid))

    def discover_new(self, dtype: DiscoveryType, data: Any) -> None:
        with self.lock:
            self.discoveries.append((int(dtype), data))

    def type(self) -> str:
        return "memory"

    def is_builtin(self) -> bool:
        return False


class MinimalDriver(MemoryDriver):
    """Implements none of the optional calls (they raise not-implemented)."""

    def endpoint_oper_info(self, nid: str, eid: str) -> dict[str, Any]:
        from netsim.errors import NotImplementedByDriverError

        raise NotImplementedByDriverError("no oper info")

    def program_external_connectivity(self, nid: str, eid: str, options: Mapping[str, Any]) -> None:
        from netsim.errors import NotImplementedByDriverError

        raise NotImplementedByDriverError("no external connectivity")


class SlowDriver(MemoryDriver):
    """Leave takes ten seconds: a plugin to kill mid-call."""

    def leave(self, nid: str, eid: str) -> None:
        import time

        time.sleep(10)


class MemoryIpam(Ipam):
    """First-fit IPAM over small pools, strict about unknown ids."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pools: dict[str, tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, set[str]]] = {}
        self.next_pool = 0

    def get_default_address_spaces(self) -> tuple[str, str]:
        return LOCAL_DEFAULT, "GlobalDefault"

    def request_pool(
        self, address_space: str, pool: str, sub_pool: str, options: Mapping[str, str], v6: bool
    ) -> tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network, dict[str, str]]:
        with self.lock:
            if sub_pool and not pool:
                raise InvalidParameterError("sub-pool without a pool")
            if pool:
                network = ipaddress.ip_network(pool)
            else:
                network = ipaddress.ip_network(f"fd00:{self.next_pool}::/64" if v6 else f"10.99.{self.next_pool}.0/28")
                self.next_pool += 1
            pool_id = f"{address_space}/{network}"
            if pool_id in self.pools:
                raise ConflictError(f"pool {network} overlaps")
            self.pools[pool_id] = (network, set())
            return pool_id, network, {"com.docker.network.gateway": ""} if options.get("gw") else {}

    def release_pool(self, pool_id: str) -> None:
        with self.lock:
            if self.pools.pop(pool_id, None) is None:
                raise NotFoundError(f"pool {pool_id} not found")

    def request_address(self, pool_id: str, preferred: Any, options: Mapping[str, str]) -> tuple[Any, dict[str, str]]:
        with self.lock:
            if pool_id not in self.pools:
                raise NotFoundError(f"pool {pool_id} not found")
            network, used = self.pools[pool_id]
            if preferred is not None:
                if preferred not in network:
                    raise InvalidParameterError(f"{preferred} out of range")
                if str(preferred) in used:
                    raise ConflictError(f"{preferred} already allocated")
                candidate = preferred
            else:
                candidate = next((h for h in network.hosts() if str(h) not in used), None)
                if candidate is None:
                    raise NoSpaceError(f"no address left in {network}")
            used.add(str(candidate))
            return ipaddress.ip_interface(f"{candidate}/{network.prefixlen}"), {}

    def release_address(self, pool_id: str, address: Any) -> None:
        with self.lock:
            if pool_id not in self.pools:
                raise NotFoundError(f"pool {pool_id} not found")
            self.pools[pool_id][1].discard(str(address))

    def is_builtin(self) -> bool:
        return False

    def capabilities(self) -> IpamCapability:
        return IpamCapability(requires_mac_address=True)


# -- a scriptable misbehaving plugin --------------------------------------------------------

HANG = "hang"  # never answer
CLOSE = "close"  # close the connection without answering (the plugin died)


class ThenClose(bytes):
    """Send these bytes, then close the connection (dies mid-reply)."""


def http_reply(status: int, body: bytes | str | dict[str, Any], *, headers: Mapping[str, str] | None = None) -> bytes:
    data = json.dumps(body).encode() if isinstance(body, dict) else body.encode() if isinstance(body, str) else body
    head = {"Content-Type": "application/vnd.docker.plugins.v1+json", "Content-Length": str(len(data))}
    head.update(headers or {})
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in head.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def chunked_reply(status: int, chunks: Sequence[bytes]) -> bytes:
    body = b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks) + b"0\r\n\r\n"
    return f"HTTP/1.1 {status} X\r\nTransfer-Encoding: chunked\r\n\r\n".encode() + body


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


Behaviour = Callable[[Request], bytes | str]


@dataclass
class FakePlugin:
    """A unix-socket server answering each request with ``behaviour(request)``:
    raw response bytes, HANG or CLOSE. ``requests`` records what arrived."""

    path: Path
    behaviour: Behaviour
    requests: list[Request] = field(default_factory=list)
    connections: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.path))
        self._listener.listen(16)
        self._listener.settimeout(0.05)
        self._threads: list[threading.Thread] = []
        self._accept_thread = threading.Thread(target=self._accept, daemon=True)
        self._accept_thread.start()

    @property
    def address(self) -> str:
        return f"unix://{self.path}"

    def calls(self) -> list[str]:
        return [r.path.lstrip("/") for r in self.requests]

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            reader = conn.makefile("rb")
            while not self._stop.is_set():
                line = reader.readline()
                if not line:
                    return
                headers = {}
                while (header := reader.readline().strip()) != b"":
                    key, _, value = header.decode().partition(":")
                    headers[key.strip()] = value.strip()
                body = reader.read(int(headers.get("Content-Length", "0")))
                request = Request(line.split()[1].decode(), headers, body)
                self.requests.append(request)
                action = self.behaviour(request)
                if action == HANG:
                    self._stop.wait(30)
                    return
                if action == CLOSE:
                    return
                assert isinstance(action, bytes)
                try:
                    conn.sendall(action)
                except OSError:  # the client gave up (e.g. a body over its limit)
                    return
                if isinstance(action, ThenClose):
                    return

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._accept_thread.join()
        for thread in self._threads:
            thread.join(timeout=2)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> FakePlugin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def network_plugin(handlers: Mapping[str, Behaviour] | None = None) -> Behaviour:
    """A well-behaved NetworkDriver plugin, except for the calls in ``handlers``."""
    defaults: dict[str, Behaviour] = {
        "Plugin.Activate": lambda r: http_reply(200, {"Implements": ["NetworkDriver"]}),
        "NetworkDriver.GetCapabilities": lambda r: http_reply(200, {"Scope": "local"}),
    }
    defaults.update(handlers or {})

    def behave(request: Request) -> bytes | str:
        handler = defaults.get(request.path.lstrip("/"))
        return handler(request) if handler else http_reply(200, {})

    return behave


# -- tests of the helpers themselves ----------------------------------------------------------


def test_memory_driver_direct_lifecycle() -> None:
    driver = MemoryDriver()
    data = [IPAMData(LOCAL_DEFAULT, ipaddress.ip_network("10.0.0.0/24"), ipaddress.ip_interface("10.0.0.1/24"))]
    driver.create_network("n", {}, NetworkInfo(), data, [])
    ifinfo = InterfaceInfo(address=ipaddress.ip_interface("10.0.0.2/24"))
    driver.create_endpoint("n", "e", ifinfo, {})
    jinfo = JoinInfo()
    driver.join("n", "e", "/sb", jinfo, {})
    assert ifinfo.mac_address is not None
    assert str(jinfo.gateway) == "10.0.0.1"
    with pytest.raises(ConflictError):
        driver.delete_network("n")
    assert driver.state()["endpoints"]["n/e"]["joined"] == "/sb"


def test_fake_plugin_records_requests() -> None:
    import http.client

    with short_dir() as directory, FakePlugin(directory / "p.sock", network_plugin()) as plugin:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(plugin.path))
        sock.sendall(b"POST /Plugin.Activate HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert json.loads(response.read()) == {"Implements": ["NetworkDriver"]}
        sock.close()
        assert plugin.calls() == ["Plugin.Activate"]


def test_capability_default_is_local() -> None:
    assert Capability() == Capability("local", "local")
    assert DiscoveryType.NODE == 1
