"""Listeners on the real kernel: real sockets inside the namespace, served in
the background, refused with the kernel's errno when taken or malformed."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netsim.errors import KernelExistsError, KernelInvalidError, KernelNotFoundError, NotFoundError
from netsim.kernel.base import Kernel, Listener
from netsim.kernel.linux.traffic_nssocket import open_socket
from netsim.probe import probe

pytestmark = pytest.mark.linux


def pair(factory: Callable[[str], Kernel], *, settle: bool = True) -> tuple[Kernel, str, str]:
    """Client ``c`` (10.5.0.1) and server ``s`` (10.5.0.2, fd05::2) on one veth."""
    kernel = factory("linux")
    client, server = kernel.ns("c"), kernel.ns("s")
    kernel.add_namespace(client)
    kernel.add_namespace(server)
    kernel.add_veth(client, "eth0", "eth0", server)
    for ns, last in ((client, 1), (server, 2)):
        kernel.add_address(ns, "eth0", f"10.5.0.{last}/24")
        kernel.add_address(ns, "eth0", f"fd05::{last}/64")
        kernel.set_link_up(ns, "eth0")
        kernel.set_link_up(ns, "lo")
    # Linux activates a link's queue only when its link watcher sees the carrier,
    # up to a second later; until then every packet is dropped. Wait for that.
    if settle:
        assert probe(kernel, client, "10.5.0.2", timeout=3.0).outcome == "echo-reply"
    return kernel, client, server


def test_tcp_listener_accepts_a_real_connection(netsim_kernel_factory: Callable[[str], Kernel]) -> None:
    kernel, client, server = pair(netsim_kernel_factory)
    kernel.add_listener(server, Listener("tcp", 8080))
    with open_socket(client, socket.AF_INET, socket.SOCK_STREAM) as conn:
        conn.settimeout(2.0)
        conn.connect(("10.5.0.2", 8080))
        conn.settimeout(2.0)
        assert conn.recv(1) == b""  # the listener closes accepted connections
    assert kernel.listeners(server) == [Listener("tcp", 8080)]


def test_udp_listener_echoes_datagrams(netsim_kernel_factory: Callable[[str], Kernel]) -> None:
    kernel, client, server = pair(netsim_kernel_factory)
    kernel.add_listener(server, Listener("udp", 5353))
    with open_socket(client, socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2.0)
        for payload in (b"one", b"two"):
            sock.sendto(payload, ("10.5.0.2", 5353))
            assert sock.recvfrom(100) == (payload, ("10.5.0.2", 5353))


def test_ipv6_and_ipv4_wildcards_are_independent(netsim_kernel_factory: Callable[[str], Kernel]) -> None:
    kernel, client, server = pair(netsim_kernel_factory)
    kernel.add_listener(server, Listener("tcp", 80))
    kernel.add_listener(server, Listener("tcp", 80, "::"))
    assert probe(kernel, client, "fd05::2", "tcp", 80, timeout=3.0).outcome == "syn-ack"
    kernel.delete_listener(server, Listener("tcp", 80, "::"))
    assert probe(kernel, client, "fd05::2", "tcp", 80).outcome == "rst"
    assert probe(kernel, client, "10.5.0.2", "tcp", 80).outcome == "syn-ack"


def test_listener_on_one_address_only(netsim_kernel_factory: Callable[[str], Kernel]) -> None:
    kernel, client, server = pair(netsim_kernel_factory)
    kernel.add_address(server, "eth0", "10.5.0.3/24")
    kernel.add_listener(server, Listener("udp", 53, "10.5.0.3"))
    assert probe(kernel, client, "10.5.0.3", "udp", 53).outcome == "udp-reply"
    assert probe(kernel, client, "10.5.0.2", "udp", 53).outcome == "port-unreachable"


def test_taken_port_is_eaddrinuse_and_changes_nothing(netsim_kernel_factory: Callable[[str], Kernel]) -> None:
    kernel, _, server = pair(netsim_kernel_factory)
    kernel.add_listener(server, Listener("tcp", 80))
    kernel.add_listener(server, Listener("udp", 80))  # another protocol: no conflict
    before = kernel.listeners(server)
    for taken in (Listener("tcp", 80), Listener("tcp", 80, "10.5.0.2")):
        with pytest.raises(KernelExistsError) as info:
            kernel.add_listener(server, taken)
        assert info.value.errno == 98  # EADDRINUSE
    assert kernel.listeners(server) == before == [Listener("tcp", 80), Listener("udp", 80)]


def test_deleting_a_missing_listener_is_enoent(netsim_kernel_factory: Callable[[str], Kernel]) -> None:
    kernel, _, server = pair(netsim_kernel_factory)
    kernel.add_listener(server, Listener("udp", 53))
    with pytest.raises(KernelNotFoundError) as info:
        kernel.delete_listener(server, Listener("tcp", 53))
    assert info.value.errno == 2
    assert kernel.listeners(server) == [Listener("udp", 53)]


@pytest.mark.parametrize(
    ("listener", "error"),
    [
        (Listener("tcp", 0), KernelInvalidError),
        (Listener("udp", 70000), KernelInvalidError),
        (Listener("sctp", 80), KernelInvalidError),  # type: ignore[arg-type]
        (Listener("tcp", 80, "10.5.0.999"), KernelInvalidError),
        (Listener("tcp", 80, "192.0.2.1"), KernelNotFoundError),  # EADDRNOTAVAIL: not an address of ours
    ],
)
def test_malformed_listeners_are_refused(
    netsim_kernel_factory: Callable[[str], Kernel], listener: Listener, error: type[Exception]
) -> None:
    kernel, _, server = pair(netsim_kernel_factory)
    with pytest.raises(error):
        kernel.add_listener(server, listener)
    assert kernel.listeners(server) == []


def test_unknown_namespace_is_not_found(netsim_kernel_factory: Callable[[str], Kernel]) -> None:
    kernel, _, _ = pair(netsim_kernel_factory)
    with pytest.raises(NotFoundError):
        kernel.add_listener(kernel.ns("ghost"), Listener("tcp", 80))
    with pytest.raises(NotFoundError):
        kernel.listeners(kernel.ns("ghost"))


def test_delete_then_readd_rebinds(netsim_kernel_factory: Callable[[str], Kernel]) -> None:
    kernel, client, server = pair(netsim_kernel_factory)
    for _ in range(3):
        kernel.add_listener(server, Listener("tcp", 443))
        assert probe(kernel, client, "10.5.0.2", "tcp", 443).outcome == "syn-ack"
        kernel.delete_listener(server, Listener("tcp", 443))
        assert probe(kernel, client, "10.5.0.2", "tcp", 443).outcome == "rst"
    assert kernel.listeners(server) == []


LISTENER_POOL = [
    Listener(proto, port, addr)
    for proto in ("tcp", "udp")
    for port in (53, 80)
    for addr in ("0.0.0.0", "10.5.0.2", "::")
]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.booleans(), st.sampled_from(LISTENER_POOL)), max_size=12))
def test_listener_operations_match_a_model(
    netsim_kernel_factory: Callable[[str], Kernel], ops: list[tuple[bool, Listener]]
) -> None:
    """Random add/delete sequences: the kernel's answer and state follow a plain set model
    (Linux's rule: a port taken by 0.0.0.0 is taken for every IPv4 address, and the
    other way round; "::" sockets are v6-only)."""
    kernel, _, server = pair(netsim_kernel_factory, settle=False)
    model: set[Listener] = set()

    def conflicts(new: Listener) -> bool:
        for held in model:
            if (held.proto, held.port) != (new.proto, new.port) or (held.addr == "::") != (new.addr == "::"):
                continue
            if held.addr == new.addr or "0.0.0.0" in (held.addr, new.addr):
                return True
        return False

    for add, listener in ops:
        if add:
            if conflicts(listener):
                with pytest.raises(KernelExistsError):
                    kernel.add_listener(server, listener)
            else:
                kernel.add_listener(server, listener)
                model.add(listener)
        elif listener in model:
            kernel.delete_listener(server, listener)
            model.discard(listener)
        else:
            with pytest.raises(KernelNotFoundError):
                kernel.delete_listener(server, listener)
        assert kernel.listeners(server) == sorted(model, key=lambda item: (item.proto, item.port, item.addr))
