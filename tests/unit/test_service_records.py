"""Service records (netsim.controller.services) against a plain model, and the
DNS wire rules (netsim.kernel.dns) they are answered with."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.controller.services import (
    ServiceRecord,
    ServiceRecords,
    check_alias,
    check_aliases,
    resolves_names,
)
from netsim.errors import InvalidParameterError
from netsim.kernel.dns import (
    DnsAnswer,
    address_of_reverse_name,
    answer_query,
    build_query,
    read_response,
    reverse_name,
)

NAMES = st.sampled_from(["db", "web", "cache", "api", "db1", "primary"])
NETWORKS = st.sampled_from(["n1", "n2", "n3"])


def _record(eid: str, name: str, aliases: tuple[str, ...], index: int) -> ServiceRecord:
    return ServiceRecord(eid, name, aliases, f"10.0.{index // 250}.{index % 250 + 2}", f"fd00::{index + 2:x}")


OPS = st.lists(
    st.tuples(st.booleans(), st.integers(0, 7), NETWORKS, NAMES, st.lists(NAMES, max_size=2)),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(OPS)
def test_records_agree_with_a_plain_model(ops: list[tuple[bool, int, str, str, list[str]]]) -> None:
    """Any sequence of joins and leaves: every name resolves to exactly the
    addresses of the live endpoints carrying it on the sandbox's networks."""
    records = ServiceRecords()
    model: dict[tuple[str, str], ServiceRecord] = {}
    for sandbox, nid in (("s1", "n1"), ("s1", "n2"), ("s2", "n3")):
        records.attach(sandbox, nid)
    for add, index, nid, name, aliases in ops:
        eid = f"e{index}"
        if add:
            record = _record(eid, name, tuple(dict.fromkeys(aliases)), index)
            records.add(nid, nid.upper(), record)
            model[(nid, eid)] = record
        else:
            records.remove(nid, eid)
            model.pop((nid, eid), None)
        records._check()
    for sandbox, nets in (("s1", ["n1", "n2"]), ("s2", ["n3"])):
        for name in ["db", "web", "cache", "api", "db1", "primary"]:
            expected = None
            for nid in nets:  # the first network (join order) that knows the name answers
                holders = [r for (n, _), r in model.items() if n == nid and name in r.names()]
                if holders:
                    expected = tuple(sorted({r.ipv4 for r in holders if r.ipv4}))
                    break
            found = records.lookup(sandbox, name, "A")
            assert (found.records if found is not None else None) == expected, (sandbox, name)


def test_names_resolve_only_on_the_sandbox_networks() -> None:
    records = ServiceRecords()
    records.add("n1", "back", ServiceRecord("e1", "db", ("db1",), "10.0.0.3", "fd00::3"))
    records.add("n2", "front", ServiceRecord("e2", "cache", (), "10.1.0.3", None))
    records.attach("web", "n1")
    assert records.lookup("web", "db", "A") == DnsAnswer(("10.0.0.3",))
    assert records.lookup("web", "db", "AAAA") == DnsAnswer(("fd00::3",))
    assert records.lookup("web", "cache", "A") is None  # on a network web is not on
    assert records.lookup("web", "db.back", "A") == DnsAnswer(("10.0.0.3",))  # name.network
    assert records.lookup("web", "db.front", "A") is None
    assert records.lookup("web", "DB1.", "A") == DnsAnswer(("10.0.0.3",))  # case, trailing dot
    assert records.lookup("web", "db", "MX") == DnsAnswer()  # implicit MX
    assert records.lookup("web", "nosuch", "MX") is None


def test_a_name_only_with_the_other_family_answers_no_records() -> None:
    records = ServiceRecords()
    records.add("n1", "back", ServiceRecord("e1", "db", (), "10.0.0.3", None))
    records.attach("s", "n1")
    assert records.lookup("s", "db", "AAAA") == DnsAnswer(())


def test_ptr_names_the_container_on_its_network_and_not_aliases() -> None:
    records = ServiceRecords()
    records.add("n1", "back", ServiceRecord("e1", "db", ("primary",), "10.0.0.3", "fd00::3"))
    records.attach("s", "n1")
    assert records.lookup("s", reverse_name("10.0.0.3"), "PTR") == DnsAnswer(("db.back",))
    assert records.lookup("s", reverse_name("fd00::3"), "PTR") == DnsAnswer(("db.back",))
    assert records.lookup("s", reverse_name("10.0.0.4"), "PTR") is None
    assert records.lookup("s", "db", "PTR") is None


def test_shared_alias_answers_every_holder_and_survives_one_leaving() -> None:
    records = ServiceRecords()
    records.add("n1", "back", ServiceRecord("e1", "db-a", ("db",), "10.0.0.4", None))
    records.add("n1", "back", ServiceRecord("e2", "db-b", ("db",), "10.0.0.3", None))
    records.attach("s", "n1")
    assert records.lookup("s", "db", "A") == DnsAnswer(("10.0.0.3", "10.0.0.4"))
    records.remove("n1", "e2")
    assert records.lookup("s", "db", "A") == DnsAnswer(("10.0.0.4",))
    records.remove("n1", "e1")
    assert records.lookup("s", "db", "A") is None
    assert records.records("n1") == []
    records._check()


def test_record_wire_round_trip() -> None:
    record = ServiceRecord("e1", "db", ("a", "b"), "10.0.0.3", None, endpoint_name="db-ep")
    assert ServiceRecord.from_wire(record.to_wire()) == record
    assert record.names() == ("db", "db-ep", "a", "b")


@pytest.mark.parametrize(
    ("name", "driver", "expected"),
    [("back", "bridge", True), ("bridge", "bridge", False), ("none", "null", False), ("ov", "overlay", True)],
)
def test_only_user_defined_networks_resolve(name: str, driver: str, expected: bool) -> None:
    assert resolves_names(name, driver) is expected


@pytest.mark.parametrize("bad", ["", "a..b", "-db", "db-", "x" * 64, "db!", 7, None])
def test_invalid_aliases_are_refused(bad: object) -> None:
    with pytest.raises(InvalidParameterError, match="invalid alias"):
        check_alias(bad)


def test_aliases_are_lowercased_and_deduplicated() -> None:
    assert check_aliases(["DB", "db", "Cache.x"]) == ["db", "cache.x"]
    with pytest.raises(InvalidParameterError, match="list of names"):
        check_aliases("db")


# --- the wire (both kernels answer through these) -------------------------------------------
def _ask(name: str, qtype: str, found: DnsAnswer | None) -> tuple[str, tuple[str, ...]] | None:
    wire = answer_query(build_query(name, qtype, 4242), lambda n, t: found)
    assert wire is not None
    return read_response(wire, 4242)


def test_unknown_names_answer_servfail_as_docker_without_external_servers() -> None:
    assert _ask("nosuch", "A", None) == ("SERVFAIL", ())
    assert _ask("db", "TXT", DnsAnswer(("x",))) == ("SERVFAIL", ())  # would be forwarded


def test_answers_carry_the_records() -> None:
    assert _ask("db", "A", DnsAnswer(("10.0.0.3", "10.0.0.4"))) == ("NOERROR", ("10.0.0.3", "10.0.0.4"))
    assert _ask("db", "AAAA", DnsAnswer(())) == ("NOERROR", ())
    assert _ask(reverse_name("10.0.0.3"), "PTR", DnsAnswer(("db.back",))) == ("NOERROR", ("db.back",))


def test_a_failing_lookup_answers_servfail() -> None:
    def broken(name: str, qtype: str) -> DnsAnswer | None:
        raise RuntimeError("boom")

    wire = answer_query(build_query("db", "A", 1), broken)
    assert wire is not None and read_response(wire, 1) == ("SERVFAIL", ())


def test_replies_are_not_answered_and_other_ids_are_not_read() -> None:
    reply = answer_query(build_query("db", "A", 9), lambda n, t: DnsAnswer(("10.0.0.3",)))
    assert reply is not None
    assert answer_query(reply, lambda n, t: DnsAnswer()) is None
    assert read_response(reply, 10) is None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80))
def test_garbage_never_raises(data: bytes) -> None:
    answer_query(data, lambda n, t: DnsAnswer(("10.0.0.3",)))
    read_response(data, 1)


def test_long_answers_are_truncated_to_a_udp_message() -> None:
    many = DnsAnswer(tuple(f"10.0.{i // 250}.{i % 250}" for i in range(100)))
    wire = answer_query(build_query("db", "A", 1), lambda n, t: many)
    assert wire is not None and len(wire) <= 512
    found = read_response(wire, 1)
    assert found is not None and 0 < len(found[1]) < 100


@given(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)))
@settings(max_examples=50)
def test_reverse_names_round_trip(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    assert address_of_reverse_name(reverse_name(str(address))) == str(address)
