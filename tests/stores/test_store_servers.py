"""The test servers themselves: a start failure carries the server's log, the
data directory goes away, and a missing binary skips (or fails under
NETSIM_REQUIRE_SERVERS=1)."""

from __future__ import annotations

import pytest

from netsim.store.servers import EtcdServer, ServerStartError, etcd_missing_reason

CONFTEST = 'pytest_plugins = ["netsim.store.testing"]\n'
# The plugin, on a machine where etcd's binary is not found.
CONFTEST_NO_ETCD = (
    CONFTEST
    + """
import netsim.store.servers
netsim.store.servers.ETCD_BINARY = "netsim-no-such-etcd"
"""
)


@pytest.mark.parametrize(("require", "outcome"), [("", {"skipped": 1}), ("1", {"failed": 0, "errors": 1})])
def test_missing_server_skips_or_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, require: str, outcome: dict[str, int]
) -> None:
    monkeypatch.setenv("NETSIM_REQUIRE_SERVERS", require)
    pytester.makeconftest(CONFTEST_NO_ETCD)
    pytester.makepyfile(test_it="def test_uses_server(etcd_server):\n    pass\n")
    result = pytester.runpytest_subprocess("-rs")
    result.assert_outcomes(**outcome)
    result.stdout.fnmatch_lines(["*etcd is not installed (Debian package etcd-server)*"])


class BrokenEtcd(EtcdServer):
    def _command(self) -> list[str]:
        return [*super()._command(), "--netsim-no-such-flag"]


@pytest.mark.stores
def test_a_server_that_will_not_start_says_why() -> None:
    if etcd_missing_reason() is not None:
        pytest.skip(etcd_missing_reason() or "")
    server = BrokenEtcd(startup_timeout=20)
    with pytest.raises(ServerStartError, match=r"(?s)etcd exited with.*netsim-no-such-flag"):
        server.__enter__()
    assert not server.workdir.exists()


@pytest.mark.stores
def test_data_dir_removed_and_restart_keeps_data() -> None:
    if etcd_missing_reason() is not None:
        pytest.skip(etcd_missing_reason() or "")
    from netsim.store import open_store

    with EtcdServer() as server:
        store = open_store(server.url)
        version = store.put("k", "v")
        server.stop(kill=True)
        assert not server.running
        server.start()
        assert store.get("k").version == version
        store.close()
        workdir = server.workdir
    assert not workdir.exists()
