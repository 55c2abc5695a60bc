"""Store URLs: what each form means, and that anything malformed is an
InvalidParameterError naming the URL (never another exception)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.errors import InvalidParameterError
from netsim.store import MemoryStore, StoreURL, open_store, parse_store_url


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("memory://", StoreURL("memory", (), "")),
        ("sqlite:///var/lib/netsim/state.db", StoreURL("sqlite", (), "/var/lib/netsim/state.db")),
        ("sqlite://state.db?poll=0.2", StoreURL("sqlite", (), "state.db", poll=0.2)),
        ("etcd://127.0.0.1:2379", StoreURL("etcd", (("127.0.0.1", 2379),), "")),
        ("etcd://a,b:1/netsim/x/?timeout=0.5", StoreURL("etcd", (("a", 2379), ("b", 1)), "netsim/x", timeout=0.5)),
        ("zk://[::1]:2181,zk-2/chroot", StoreURL("zk", (("::1", 2181), ("zk-2", 2181)), "chroot")),
        ("ETCD://h", StoreURL("etcd", (("h", 2379),), "")),
    ],
)
def test_forms(url: str, parsed: StoreURL) -> None:
    assert parse_store_url(url) == parsed


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("consul://127.0.0.1:8500", "no Consul server can be installed"),
        ("boltdb:///x.db", "sqlite://"),
        ("redis://h", "unsupported store scheme 'redis'"),
        ("memory", "expected scheme://"),
        ("memory://x", "nothing after"),
        ("sqlite://", "needs a file"),
        ("sqlite:///", "needs a file"),
        ("sqlite:///tmp/dir/", "directory"),
        ("etcd://", "empty host"),
        ("etcd://h:", "empty port"),
        ("etcd://h:0", "invalid port"),
        ("etcd://h:70000", "invalid port"),
        ("etcd://h:\uff12", "invalid port"),  # a full-width digit
        ("etcd://h,,i", "empty host"),
        ("etcd://bad_host", "invalid host"),
        ("zk://[::1", "malformed IPv6"),
        ("zk://[nope]:1", "not an IPv6 address"),
        ("zk://h/../x", "invalid prefix segment"),
        ("zk://h/a//b", "invalid prefix segment"),
        ("etcd://h?timeout=0", "timeout must be"),
        ("etcd://h?timeout=nan", "timeout must be"),
        ("etcd://h?timeout", "timeout must be"),
        ("etcd://h?poll=1", "unknown option 'poll'"),
        ("sqlite://x.db?color=red", "unknown option 'color'"),
    ],
)
def test_malformed_urls_say_what_is_wrong(url: str, words: str) -> None:
    with pytest.raises(InvalidParameterError, match="store URL") as caught:
        open_store(url)
    assert words in str(caught.value) and repr(url) in str(caught.value)


def test_non_string_url() -> None:
    with pytest.raises(InvalidParameterError, match="must be a string"):
        parse_store_url(None)  # type: ignore[arg-type]


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.text(max_size=40),
        st.builds(
            lambda scheme, rest: f"{scheme}://{rest}",
            st.sampled_from(["memory", "sqlite", "etcd", "zk", "consul", "ETCD", ""]),
            st.text(alphabet=st.sampled_from("ab1:[]/,?=.&%-_ \x00é"), max_size=30),
        ),
    )
)
def test_any_text_parses_or_is_refused_clearly(url: str) -> None:
    try:
        parsed = parse_store_url(url)
    except InvalidParameterError as exc:
        assert repr(url) in str(exc)
        return
    assert parsed.scheme in ("memory", "sqlite", "etcd", "zk")
    assert parsed.timeout > 0 and parsed.poll > 0
    assert all(1 <= port <= 65535 for _, port in parsed.endpoints)


def test_open_memory_and_relative_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store("memory://")
    assert isinstance(store, MemoryStore) and store.url == "memory://"
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite://state.db")
    relative.put("k", "v")
    relative.close()
    assert os.path.exists(tmp_path / "state.db")
