"""Real etcd and ZooKeeper servers for tests: started on 127.0.0.1 with a free
port and a temporary data directory, stopped and removed afterwards.

>>> with EtcdServer() as etcd:          # doctest: +SKIP
...     store = open_store(etcd.url)    # etcd://127.0.0.1:<port>

``stop()`` / ``start()`` restart the same server on the same port and data
directory (the fault tests use them). Only the process a server object started
is ever signalled. A server that does not answer within ``startup_timeout``
raises :class:`ServerStartError` carrying the tail of its log.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import IO, Self

from netsim.errors import UnavailableError

ETCD_BINARY = "etcd"
ZOOKEEPER_JAR = "/usr/share/java/zookeeper.jar"
ZOOKEEPER_CONF_DIR = "/etc/zookeeper/conf"
ZOOKEEPER_SCRIPT = "/usr/share/zookeeper/bin/zkServer.sh"


class ServerStartError(UnavailableError):
    """A test server did not come up; the message ends with its log tail."""

    kind = "server-start"


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def etcd_missing_reason() -> str | None:
    if shutil.which(ETCD_BINARY) is None:
        return "etcd is not installed (Debian package etcd-server)"
    return None


def zookeeper_missing_reason() -> str | None:
    if not os.path.exists(ZOOKEEPER_JAR) or shutil.which("java") is None:
        return f"ZooKeeper is not installed ({ZOOKEEPER_JAR} and java; Debian package zookeeper)"
    return None


class _Server:
    """Process management shared by both servers."""

    name = "server"

    def __init__(self, *, startup_timeout: float = 60.0) -> None:
        self.startup_timeout = startup_timeout
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"netsim-{self.name}-"))
        self.log_path = self.workdir / "server.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    @property
    def url(self) -> str:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start (or restart, same port and data) and wait until it answers."""
        if self.running:
            return
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            self._command(), stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.workdir
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ServerStartError(f"{self.name} exited with {self._process.returncode}:\n{self.log_tail()}")
            if self._ready():
                return
            time.sleep(0.1)
        self.stop()
        raise ServerStartError(f"{self.name} did not answer within {self.startup_timeout:g}s:\n{self.log_tail()}")

    def stop(self, *, kill: bool = False) -> None:
        """Stop the process this object started (SIGTERM, or SIGKILL with ``kill``)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open but nothing
        answers. Returns once the kernel reports every thread stopped."""
        if self._process is None:
            return
        self._process.send_signal(signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while not self._all_threads_stopped():
            if time.monotonic() > deadline:
                raise ServerStartError(f"{self.name} (pid {self._process.pid}) did not stop on SIGSTOP")
            time.sleep(0.01)

    def _all_threads_stopped(self) -> bool:
        assert self._process is not None
        tasks = Path(f"/proc/{self._process.pid}/task")
        try:
            states = [(task / "stat").read_text().rsplit(")", 1)[1].split()[0] for task in tasks.iterdir()]
        except OSError:
            return False
        return all(state in ("T", "t") for state in states)

    def resume(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.resume()  # a frozen process cannot act on SIGTERM
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EtcdServer(_Server):
    """One etcd member; ``url`` is ``etcd://127.0.0.1:<port>``."""

    name = "etcd"

    def __init__(self, *, startup_timeout: float = 60.0) -> None:
        super().__init__(startup_timeout=startup_timeout)
        self.peer_port = free_port()

    @property
    def url(self) -> str:
        return f"etcd://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        client = f"http://127.0.0.1:{self.port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        return [
            shutil.which(ETCD_BINARY) or ETCD_BINARY,
            "--name", "netsim",
            "--data-dir", str(self.workdir / "data"),
            "--listen-client-urls", client,
            "--advertise-client-urls", client,
            "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"netsim={peer}",
            "--initial-cluster-state", "new",
        ]  # fmt: skip

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1) as reply:
                return b'"true"' in reply.read()
        except OSError:
            return False


class ZooKeeperServer(_Server):
    """One standalone ZooKeeper; ``url`` is ``zk://127.0.0.1:<port>``.

    A short ``tickTime`` keeps session timeouts (2-20 ticks) small, so a lost
    client notices within seconds."""

    name = "zookeeper"

    def __init__(self, *, startup_timeout: float = 60.0, tick_ms: int = 500) -> None:
        super().__init__(startup_timeout=startup_timeout)
        self.tick_ms = tick_ms  # sessions may last 2 to 20 ticks

    @property
    def url(self) -> str:
        return f"zk://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        config = self.workdir / "zoo.cfg"
        config.write_text(
            f"tickTime={self.tick_ms}\n"
            f"dataDir={self.workdir / 'data'}\n"
            f"clientPort={self.port}\n"
            "clientPortAddress=127.0.0.1\n"
            "admin.enableServer=false\n"
            "4lw.commands.whitelist=srvr,ruok\n"
            "maxClientCnxns=0\n"
        )
        classpath = ":".join(p for p in (ZOOKEEPER_CONF_DIR, ZOOKEEPER_JAR) if os.path.exists(p))
        return [
            shutil.which("java") or "java",
            "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto",
            f"-Dzookeeper.log.dir={self.workdir}",
            "-Dzookeeper.root.logger=INFO,CONSOLE",
            "-cp", classpath,
            "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(config),
        ]  # fmt: skip

    def _ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"srvr")
                reply = b""
                while chunk := sock.recv(4096):
                    reply += chunk
        except OSError:
            return False
        return b"Mode: standalone" in reply
