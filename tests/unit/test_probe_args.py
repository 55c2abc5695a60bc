"""netsim.probe checks every argument before the kernel sees the probe."""

from __future__ import annotations

import ipaddress
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.errors import InvalidParameterError, NotFoundError
from netsim.kernel.base import Kernel, ProbeResult
from netsim.probe import probe, proto_label, reachability_matrix, reachable

NS = "netsim-unit-a"


class RecordingKernel:
    """Stands in for a kernel: knows two namespaces and records probes."""

    def __init__(self, kind: str = "fake") -> None:
        self.kind = kind
        self.calls: list[tuple[Any, ...]] = []

    def namespaces(self) -> list[str]:
        return [NS, "netsim-unit-b"]

    def probe(self, *args: Any) -> ProbeResult:
        self.calls.append(args)
        ns, dst, proto, port = args[:4]
        outcome = "echo-reply" if proto == "icmp" else "rst"
        return ProbeResult(outcome == "echo-reply", proto, ns, dst, port, outcome=outcome)


def kernel(kind: str = "fake") -> tuple[RecordingKernel, Kernel]:
    recorder = RecordingKernel(kind)
    return recorder, cast(Kernel, recorder)


def test_valid_probe_reaches_the_kernel_normalized() -> None:
    recorder, k = kernel()
    result = probe(k, NS, " 10.0.0.2 ", "tcp", 80, 0.5, src="10.0.0.1")
    assert result.outcome == "rst"
    assert recorder.calls == [(NS, "10.0.0.2", "tcp", 80, 0.5, "10.0.0.1")]


def test_ipv6_destination_is_normalized() -> None:
    recorder, k = kernel()
    probe(k, NS, "FD00:0::2")
    assert recorder.calls == [(NS, "fd00::2", "icmp", None, 1.0, None)]


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"src_namespace": "netsim-unit-zz"}, NotFoundError, "netsim-unit-zz"),
        ({"dst": "10.0.0.300"}, InvalidParameterError, "destination"),
        ({"dst": "10.0.0.0/24"}, InvalidParameterError, "destination"),
        ({"dst": ""}, InvalidParameterError, "destination"),
        ({"dst": "0.0.0.0"}, InvalidParameterError, "unspecified"),
        ({"dst": 167772162}, InvalidParameterError, "destination"),
        ({"proto": "sctp"}, InvalidParameterError, "protocol"),
        ({"proto": "ICMP"}, InvalidParameterError, "protocol"),
        ({"proto": "tcp"}, InvalidParameterError, "needs a port"),
        ({"proto": "udp"}, InvalidParameterError, "needs a port"),
        ({"proto": "icmp", "port": 80}, InvalidParameterError, "no port"),
        ({"proto": "tcp", "port": 0}, InvalidParameterError, "1-65535"),
        ({"proto": "tcp", "port": 65536}, InvalidParameterError, "1-65535"),
        ({"proto": "udp", "port": True}, InvalidParameterError, "integer"),
        ({"proto": "udp", "port": "53"}, InvalidParameterError, "integer"),
        ({"timeout": 0}, InvalidParameterError, "timeout"),
        ({"timeout": -1.0}, InvalidParameterError, "timeout"),
        ({"timeout": 30.5}, InvalidParameterError, "timeout"),
        ({"timeout": float("nan")}, InvalidParameterError, "timeout"),
        ({"timeout": float("inf")}, InvalidParameterError, "timeout"),
        ({"timeout": "1"}, InvalidParameterError, "timeout"),
        ({"src": "fd00::1"}, InvalidParameterError, "IP versions"),
        ({"src": "nonsense"}, InvalidParameterError, "source"),
    ],
)
def test_bad_arguments_are_refused_before_the_kernel(
    kwargs: dict[str, Any], error: type[Exception], words: str
) -> None:
    recorder, k = kernel()
    call: dict[str, Any] = {"src_namespace": NS, "dst": "10.0.0.2", "proto": "icmp", "port": None, "timeout": 1.0}
    call.update(kwargs)
    with pytest.raises(error, match=words):
        probe(k, **call)
    assert recorder.calls == []


def test_timeout_bounds_are_inclusive_at_thirty() -> None:
    recorder, k = kernel()
    probe(k, NS, "10.0.0.2", timeout=30)
    assert recorder.calls[0][4] == 30.0


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=40))
def test_random_text_is_an_address_or_an_invalid_parameter(text: str) -> None:
    recorder, k = kernel()
    try:
        expected = ipaddress.ip_address(text.strip())
    except ValueError:
        expected = None
    if expected is None or expected.is_unspecified:
        with pytest.raises(InvalidParameterError):
            probe(k, NS, text)
        assert recorder.calls == []
    else:
        probe(k, NS, text)
        assert recorder.calls[0][1] == str(expected)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["icmp", "tcp", "udp", "sctp", ""]), st.one_of(st.none(), st.integers(-5, 70000)))
def test_port_rules_hold_for_any_combination(proto: str, port: int | None) -> None:
    recorder, k = kernel()
    valid = (proto == "icmp" and port is None) or (proto in ("tcp", "udp") and port is not None and 1 <= port <= 65535)
    if valid:
        probe(k, NS, "10.0.0.2", proto, port)
        assert recorder.calls[0][2:4] == (proto, port)
    else:
        with pytest.raises(InvalidParameterError):
            probe(k, NS, "10.0.0.2", proto, port)
        assert recorder.calls == []


def test_matrix_covers_every_cell_with_labels() -> None:
    recorder, k = kernel()
    matrix = reachability_matrix(k, [NS, "netsim-unit-b"], ["10.0.0.2", "fd00::2"], ["icmp", "tcp/80", ("udp", 53)])
    assert len(matrix) == 2 * 2 * 3
    assert matrix[(NS, "fd00::2", "icmp")] == "echo-reply"
    assert matrix[("netsim-unit-b", "10.0.0.2", "udp/53")] == "rst"
    assert reachable(matrix)[(NS, "10.0.0.2", "tcp/80")] is False
    assert len(recorder.calls) == 12
    assert proto_label(("tcp", 8080)) == "tcp/8080"


@pytest.mark.parametrize(
    ("sources", "targets", "protos", "error"),
    [
        (["netsim-unit-zz"], ["10.0.0.2"], ["icmp"], NotFoundError),
        ([NS], ["10.0.0.999"], ["icmp"], InvalidParameterError),
        ([NS], ["10.0.0.2"], ["tcp"], InvalidParameterError),
        ([NS], ["10.0.0.2"], ["tcp/http"], InvalidParameterError),
        ([NS], ["10.0.0.2"], ["icmp/7"], InvalidParameterError),
        ([NS], ["10.0.0.2"], [("gre", 1)], InvalidParameterError),
    ],
)
def test_matrix_checks_everything_before_the_first_probe(
    sources: list[str], targets: list[str], protos: list[Any], error: type[Exception]
) -> None:
    recorder, k = kernel()
    with pytest.raises(error):
        reachability_matrix(k, [NS, *sources], targets, protos)
    assert recorder.calls == []


@pytest.mark.parametrize("kind", ["fake", "linux"])
def test_matrix_with_workers_gives_the_same_cells(kind: str) -> None:
    recorder, k = kernel(kind)
    args = ([NS, "netsim-unit-b"], ["10.0.0.2", "10.0.0.3"], ["icmp", "udp/53"])
    sequential = reachability_matrix(k, *args)
    parallel = reachability_matrix(k, *args, workers=4)
    assert parallel == sequential and list(parallel) == list(sequential)  # same cells, same order
    assert len(recorder.calls) == 16


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_matrix_refuses_bad_worker_counts(workers: Any) -> None:
    recorder, k = kernel("linux")
    with pytest.raises(InvalidParameterError, match="workers"):
        reachability_matrix(k, [NS], ["10.0.0.2"], workers=workers)
    assert recorder.calls == []
