"""A cluster whose hosts are separate OS processes sharing one global store.

:class:`ProcessCluster` builds the underlay (a namespace with a bridge) on
its own kernel, starts one ``python -m netsim.cluster.host`` per host (each
with its own kernel run id, controller, local store and uplink on the
underlay) and drives them over pipes. Everything the hosts share goes
through the global store: ``etcd://`` and ``zk://`` for real servers, or
``sqlite:///file`` on one machine with no server at all.

Real kernel only: processes cannot share the fake kernel's memory, so on the
fake kernel the in-process :class:`netsim.cluster.Cluster` stands in (its
table events travel on an in-process bus instead of store watches).

>>> ProcessCluster(["h1"], "memory://", kernel=None)  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
netsim.errors.InvalidParameterError: hosts in separate processes need a global store they can all open ...
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from netsim import errors, waiting
from netsim.cluster import UNDERLAY_BRIDGE
from netsim.controller import IpamConfig
from netsim.errors import ConflictError, InvalidParameterError, NetsimError, NotFoundError, UnavailableError
from netsim.kernel.base import Kernel
from netsim.netlabel import PortBinding
from netsim.undo import Undo, rollback_on_error

UNDERLAY_ROLE = "underlay"
MAX_HOSTS = 253
#: seconds a host process may take to start, or to answer one command
DEFAULT_TIMEOUT = 60.0


@dataclasses.dataclass
class _HostProcess:
    name: str
    process: subprocess.Popen[str]
    log_path: Path


def _ipam_json(ipam: IpamConfig | None) -> dict[str, Any]:
    if ipam is None:
        return {}
    pools = [
        {"subnet": p.subnet, "ip_range": p.ip_range, "gateway": p.gateway, "aux_addresses": dict(p.aux_addresses)}
        for p in ipam.pools
    ]
    return {"pools": pools, "options": dict(ipam.options)}


def host_run_id(run_id: str, index: int) -> str:
    """A host process's own run id: the cluster's (cut to fit) plus ``h<index>``,
    so ``netsim clean`` of the cluster's run prefix finds every host's namespaces.

    >>> host_run_id("abc123", 0), host_run_id("abcdef123456", 17)
    ('abc123h00', 'abcdef123h11')
    """
    return f"{run_id[:9]}h{index:02x}"


class ProcessCluster:
    def __init__(
        self,
        hosts: Sequence[str],
        global_store: str,
        *,
        kernel: Kernel | None,
        local_store_dir: str | None = None,
        experimental: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        names = list(hosts)
        if not names or len(names) > MAX_HOSTS or len(set(names)) != len(names):
            raise InvalidParameterError(f"a cluster needs 1-{MAX_HOSTS} distinct host names, got {names!r}")
        if not isinstance(global_store, str) or global_store.startswith("memory:"):
            raise InvalidParameterError(
                "hosts in separate processes need a global store they can all open"
                f" (etcd://, zk:// or sqlite:///file), not {global_store!r}"
            )
        if kernel is None or kernel.kind != "linux":
            raise InvalidParameterError(
                "hosts in separate processes need the real kernel: processes cannot share a fake kernel"
                " (use netsim.cluster.Cluster, in one process, on the fake kernel)"
            )
        self.kernel = kernel
        self.global_store = global_store
        self.timeout = timeout
        self.underlay_namespace = kernel.ns(UNDERLAY_ROLE)
        self.log_dir = Path(tempfile.mkdtemp(prefix="netsim-cluster-"))
        self.hosts: dict[str, _HostProcess] = {}
        #: host -> its index (underlay address, run id); never reused within a cluster
        self._index_of: dict[str, int] = {}
        self._local_store_dir = local_store_dir
        self._experimental = experimental
        self._networks: dict[str, str] = {}
        self._closed = False
        self._teardown = Undo()
        with rollback_on_error() as undo:
            kernel.add_namespace(self.underlay_namespace)
            undo.push("delete the underlay", lambda: kernel.delete_namespace(self.underlay_namespace))
            kernel.set_link_up(self.underlay_namespace, "lo")
            kernel.add_bridge(self.underlay_namespace, UNDERLAY_BRIDGE)
            kernel.set_link_up(self.underlay_namespace, UNDERLAY_BRIDGE)
            for index, name in enumerate(names):
                local = f"sqlite:///{local_store_dir}/{name}.db" if local_store_dir else None
                self._start(name, index, local, experimental)
                undo.push(f"stop {name}", lambda name=name: self._stop(name))  # type: ignore[misc]
            self._teardown.extend(undo)

    # --- processes --------------------------------------------------------------------------------
    def _start(self, name: str, index: int, local_store: str | None, experimental: bool) -> None:
        self._index_of[name] = index
        config = {
            "kernel": "linux",
            "run_id": host_run_id(self.kernel.run_id, index),
            "name": name,
            "index": index,
            "global_store": self.global_store,
            "local_store": local_store,
            "underlay_namespace": self.underlay_namespace,
            "experimental": experimental,
        }
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "netsim.cluster.host", json.dumps(config)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                start_new_session=True,  # a signal to the test run reaches the hosts through close()
            )
        host = _HostProcess(name, process, log_path)
        self.hosts[name] = host
        try:
            self._reply(host, "start")
        except BaseException:
            self._stop(name)
            raise

    def _reply(self, host: _HostProcess, what: str) -> Any:
        stdout: IO[str] | None = host.process.stdout
        assert stdout is not None
        ready = waiting.readable([stdout.fileno()], self.timeout)
        line = stdout.readline() if ready else ""
        if not line:
            tail = host.log_path.read_text(errors="replace")[-2000:]
            state = "timed out" if not ready else f"exited with {host.process.poll()}"
            raise UnavailableError(f"cluster host {host.name!r} {state} during {what}; its log ends:\n{tail}")
        reply = json.loads(line)
        if "error" in reply:
            kind = getattr(errors, reply["error"]["type"], NetsimError)
            if not (isinstance(kind, type) and issubclass(kind, NetsimError)):
                kind = NetsimError
            raise kind(f"host {host.name}: {reply['error']['message']}")
        return reply["ok"]

    def call(self, host: str, op: str, **args: Any) -> Any:
        """Run one command on ``host``'s process and return its answer."""
        process = self.hosts.get(host)
        if process is None:
            raise NotFoundError(f"host {host!r} is not in the cluster (hosts: {', '.join(self.hosts)})")
        stdin = process.process.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps({"op": op, "args": args}) + "\n")
            stdin.flush()
        except BrokenPipeError:
            raise UnavailableError(f"cluster host {host!r} is gone (exit {process.process.poll()})") from None
        return self._reply(process, op)

    def _stop(self, name: str) -> None:
        host = self.hosts.pop(name, None)
        if host is None:
            return
        process = host.process
        with contextlib.suppress(BrokenPipeError, OSError):
            assert process.stdin is not None
            process.stdin.write(json.dumps({"op": "close"}) + "\n")
            process.stdin.close()
        try:
            process.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)  # our own child's session only
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        if process.returncode != 0:
            tail = host.log_path.read_text(errors="replace")[-2000:]
            raise NetsimError(f"cluster host {name!r} exited with {process.returncode}; its log ends:\n{tail}")

    # --- membership -----------------------------------------------------------------------------------
    def add_host(self, name: str) -> None:
        """Start a host process that joins the running cluster: it gets every
        cluster network from its definition in the store and catches up on
        the table entries there (the overlay's peers) before it answers."""
        if name in self.hosts:
            raise ConflictError(f"host {name!r} is already in the cluster")
        index = max(self._index_of.values(), default=-1) + 1
        if index >= MAX_HOSTS:
            raise InvalidParameterError(f"a cluster holds at most {MAX_HOSTS} hosts")
        local = f"sqlite:///{self._local_store_dir}/{name}.db" if self._local_store_dir else None
        self._start(name, index, local, self._experimental)
        try:
            for network in self._networks:
                self.call(name, "ensure_network", name=network)
        except BaseException:
            self._stop(name)
            raise
        self._teardown.push(f"stop {name}", lambda: self._stop(name))

    def remove_host(self, name: str) -> None:
        """A host leaves: its containers go (their peer entries leave the store
        and every other host withdraws them), its copies of the networks go,
        its process stops and removes its namespaces."""
        if name not in self.hosts:
            raise NotFoundError(f"host {name!r} is not in the cluster (hosts: {', '.join(self.hosts)})")
        if len(self.hosts) == 1:
            raise ConflictError(f"host {name!r} is the cluster's last host: close the cluster instead")
        self.call(name, "remove_containers")
        for network in self._networks:
            self.call(name, "drop_network", name=network)
        self._stop(name)
        self.sync()

    # --- networks -------------------------------------------------------------------------------------
    def create_network(
        self,
        name: str,
        driver: str = "overlay",
        options: dict[str, str] | None = None,
        ipam: IpamConfig | None = None,
        internal: bool = False,
        labels: dict[str, str] | None = None,
        on: str | None = None,
    ) -> str:
        """Create ``name`` on host ``on`` (default: the first), then on every other host."""
        first = on or next(iter(self.hosts))
        nid: str = self.call(
            first,
            "create_network",
            name=name,
            driver=driver,
            options=dict(options or {}),
            ipam=_ipam_json(ipam),
            internal=internal,
            labels=dict(labels or {}),
        )
        for host in self.hosts:
            if host != first:
                self.call(host, "ensure_network", name=name)
        self._networks[name] = nid
        return nid

    def delete_network(self, name: str) -> None:
        for host in self.hosts:
            count = self.call(host, "endpoint_count", name=name)
            if count:
                raise ConflictError(f"cluster network {name!r} has {count} endpoint(s) on host {host!r}")
        hosts = list(self.hosts)
        for host in hosts[:-1]:
            self.call(host, "drop_network", name=name)
        self.call(hosts[-1], "drop_network", name=name, last=True)
        self._networks.pop(name, None)

    def networks(self) -> dict[str, str]:
        return dict(self._networks)

    # --- containers ---------------------------------------------------------------------------------------
    def connect(self, host: str, container: str, network: str, ports: Sequence[PortBinding] = ()) -> dict[str, Any]:
        binding = [dataclasses.asdict(p) for p in ports]
        found: dict[str, Any] = self.call(host, "connect", container=container, network=network, ports=binding)
        self.sync()
        return found

    def disconnect(self, host: str, container: str, network: str) -> None:
        self.call(host, "disconnect", container=container, network=network)
        self.sync()

    def sync(self) -> None:
        """Every host has delivered every table event in the store (watches are asynchronous)."""
        for host in self.hosts:
            self.call(host, "sync")

    def probe(self, host: str, container: str, dst: str, proto: str = "icmp", port: int | None = None) -> Any:
        return self.call(host, "probe", container=container, dst=dst, proto=proto, port=port)

    def listen(self, host: str, container: str, proto: str, port: int) -> None:
        self.call(host, "listen", container=container, proto=proto, port=port)

    # --- teardown -------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Delete the networks, stop every host (each removes its namespaces), then the underlay."""
        if self._closed:
            return
        self._closed = True
        errors_seen: list[BaseException] = []
        try:
            for host in self.hosts:
                self.call(host, "remove_containers")
            for name in list(self._networks):
                self.delete_network(name)
        except NetsimError as exc:
            errors_seen.append(exc)
        problems = self._teardown.run()
        if problems:
            errors_seen.append(NetsimError(f"cluster teardown incomplete: {'; '.join(problems)}"))
        if errors_seen:
            raise errors_seen[0]

    def __enter__(self) -> ProcessCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
