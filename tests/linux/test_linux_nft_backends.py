"""The two nftables backends (libnftables in-process, ``nft`` process) agree, land in
the right namespace (never the root one), map errors alike, and the library
path falls back to the process; plus the per-namespace sysctl defaults."""

from __future__ import annotations

import errno
import hashlib
import json
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from netsim.errors import KernelError
from netsim.kernel.base import Dnat, Filter, Kernel, Masquerade
from netsim.kernel.linux import LinuxKernel
from netsim.kernel.linux import nft as nft_module
from netsim.kernel.linux.libnft import LibNftContext, load_libnft
from netsim.kernel.linux.netns import NAMESPACE_SYSCTLS
from netsim.kernel.linux.nft import BACKEND_VARIABLE, NftNamespace, default_backend, run_nft, run_nft_library
from netsim.safety import namespaces_with_prefix

pytestmark = pytest.mark.linux
Factory = Callable[[str], Kernel]
RULES = (
    Masquerade("10.0.0.0/24", not_out_iface="br0"),
    Dnat("tcp", 8080, "10.0.0.2", 80),
    Dnat("udp", 53, "fd00::2", 5353, dst="fd00::1"),
    Filter("drop", in_iface="br0", out_iface="eth0", src="10.0.0.0/24"),
    Filter("accept", in_iface="br0", out_iface="br0", layer="bridge"),
)


def ruleset_text(ns: str | None) -> str:
    """``nft list ruleset`` in ``ns`` (None: the root namespace, read only)."""
    prefix = ["nsenter", f"--net=/run/netns/{ns}"] if ns else []
    done = subprocess.run([*prefix, "nft", "list", "ruleset"], capture_output=True, text=True, check=True)
    return done.stdout


def root_ruleset_digest() -> str:
    return hashlib.sha256(ruleset_text(None).encode()).hexdigest()


def nft_rule_count(ns: str) -> int:
    done = subprocess.run(
        ["nsenter", f"--net=/run/netns/{ns}", "nft", "-j", "list", "ruleset"],
        capture_output=True,
        text=True,
        check=True,
    )
    return sum(1 for item in json.loads(done.stdout)["nftables"] if "rule" in item)


@pytest.fixture
def linux(netsim_kernel_factory: Factory) -> LinuxKernel:
    kernel = netsim_kernel_factory("linux")
    assert isinstance(kernel, LinuxKernel)
    return kernel


@pytest.fixture
def library_available() -> None:
    if load_libnft() is None:
        pytest.skip("libnftables.so.1 is not installed")


@pytest.mark.parametrize("backend", ["library", "process"])
def test_backends_install_in_the_namespace_only_and_delete_by_handle(
    linux: LinuxKernel, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "library":
        request.getfixturevalue("library_available")
    h1, h2 = linux.ns("h1"), linux.ns("h2")
    linux.add_namespace(h1)
    linux.add_namespace(h2)
    root_before = root_ruleset_digest()
    tables = NftNamespace(h1, backend="library" if backend == "library" else "process")
    try:
        for rule in RULES:
            tables.add(rule, {"br0": frozenset({"veth0"})})
        assert tables.rules() == list(RULES)
        assert (tables.context is not None) == (backend == "library")
        assert nft_rule_count(h1) == 7  # each Dnat is two nft rules
        assert "ports_" in ruleset_text(h1)
        assert ruleset_text(h2) == ""
        assert root_ruleset_digest() == root_before
        for rule in RULES:
            tables.delete(rule)
        assert nft_rule_count(h1) == 0
        assert "ports_" not in ruleset_text(h1)
        assert root_ruleset_digest() == root_before
    finally:
        tables.close()


@pytest.mark.parametrize("backend", ["library", "process"])
def test_backends_map_errors_alike_and_change_nothing(
    linux: LinuxKernel, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "library":
        request.getfixturevalue("library_available")
    h1 = linux.ns("h1")
    linux.add_namespace(h1)
    linux.add_rule(h1, RULES[0])
    before = ruleset_text(h1)
    missing_rule = [{"delete": {"rule": {"family": "inet", "table": "netsim", "chain": "forward", "handle": 4242}}}]
    missing_table = [{"delete": {"table": {"family": "inet", "name": "no_such_table"}}}]
    library = load_libnft()
    context = LibNftContext(library, h1) if backend == "library" and library is not None else None
    try:
        for commands in (missing_rule, missing_table):
            with pytest.raises(KernelError) as failure:
                if context is not None:
                    run_nft_library(context, commands)
                else:
                    run_nft(h1, commands)
            assert failure.value.errno == errno.ENOENT
            assert h1 in str(failure.value) and "No such file or directory" in str(failure.value)
        assert ruleset_text(h1) == before
    finally:
        if context is not None:
            context.close()


def test_library_is_the_default_and_process_is_the_fallback(
    linux: LinuxKernel, library_available: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    h1 = linux.ns("h1")
    linux.add_namespace(h1)
    monkeypatch.delenv(BACKEND_VARIABLE, raising=False)
    assert default_backend() == "library"
    monkeypatch.setenv(BACKEND_VARIABLE, "process")
    assert default_backend() == "process"
    monkeypatch.delenv(BACKEND_VARIABLE)

    def no_library() -> None:
        return None

    monkeypatch.setattr(nft_module, "load_libnft", no_library)
    assert default_backend() == "process"
    tables = NftNamespace(h1, backend="library")  # asked for, but the library "failed to load"
    tables.add(RULES[1], {})
    assert tables.backend == "process" and tables.context is None
    assert nft_rule_count(h1) == 2
    tables.delete(RULES[1])
    assert nft_rule_count(h1) == 0


def test_library_contexts_are_safe_across_threads(linux: LinuxKernel, library_available: None) -> None:
    """Eight threads on two namespaces (four per context; contexts share library state):
    every rule lands
    once, in its own namespace, with a distinct handle; the root ruleset is untouched."""
    names = [linux.ns("h1"), linux.ns("h2")]
    for name in names:
        linux.add_namespace(name)
    root_before = root_ruleset_digest()
    library = load_libnft()
    assert library is not None
    contexts = {name: LibNftContext(library, name) for name in names}
    setup = NftNamespace(names[0])._setup_commands()
    handles: dict[str, list[int]] = {name: [] for name in names}
    failures: list[BaseException] = []
    lock = threading.Lock()
    try:
        for name in names:
            run_nft_library(contexts[name], setup)

        def worker(name: str) -> None:
            try:
                for _ in range(10):
                    add: list[dict[str, Any]] = [
                        {
                            "add": {
                                "rule": {
                                    "family": "inet",
                                    "table": "netsim",
                                    "chain": "forward",
                                    "expr": [{"accept": None}],
                                }
                            }
                        }
                    ]
                    echoed = run_nft_library(contexts[name], add, echo=True)
                    with lock:
                        handles[name].append(int(echoed[0]["add"]["rule"]["handle"]))
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=worker, args=(names[i % 2],)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        for name in names:
            assert len(handles[name]) == len(set(handles[name])) == 40
            assert nft_rule_count(name) == 40
        assert root_ruleset_digest() == root_before
    finally:
        for context in contexts.values():
            context.close()


def test_closed_context_refuses_to_run(linux: LinuxKernel, library_available: None) -> None:
    h1 = linux.ns("h1")
    linux.add_namespace(h1)
    library = load_libnft()
    assert library is not None
    context = LibNftContext(library, h1)
    context.close()
    context.close()  # idempotent
    with pytest.raises(KernelError) as closed:
        context.run('{"nftables": []}', echo=False)
    assert closed.value.errno == errno.EBADF


def test_deleting_a_namespace_with_library_rules_releases_it(linux: LinuxKernel) -> None:
    """The context's netlink socket pins its namespace; delete_namespace frees it first,
    so the veth peer in the other namespace goes at once (no EBUSY wait)."""
    h1, c1 = linux.ns("h1"), linux.ns("c1")
    linux.add_namespace(h1)
    linux.add_namespace(c1)
    linux.add_veth(h1, "veth0", "eth0", c1)
    linux.add_rule(c1, RULES[0])
    linux.delete_namespace(c1)
    assert [link.name for link in linux.links(h1)] == ["lo"]
    assert namespaces_with_prefix(linux.prefix) == [h1]


def test_new_namespaces_skip_dad_and_redirects_root_untouched(linux: LinuxKernel) -> None:
    root_before = {key: Path("/proc/sys", key).read_text() for key, _ in NAMESPACE_SYSCTLS}
    h1, c1 = linux.ns("h1"), linux.ns("c1")
    linux.add_namespace(h1)
    linux.add_namespace(c1)
    for key, value in NAMESPACE_SYSCTLS:
        assert linux.get_sysctl(c1, key.replace("/", ".")) == value
    linux.add_veth(h1, "veth0", "eth0", c1)
    assert linux.get_sysctl(c1, "net.ipv6.conf.eth0.accept_dad") == "0"
    linux.add_address(c1, "eth0", "fd00::2/64")
    linux.set_link_up(c1, "eth0")
    linux.set_link_up(h1, "veth0")
    shown = subprocess.run(
        ["ip", "-n", c1, "-6", "addr", "show", "dev", "eth0"], capture_output=True, text=True, check=True
    ).stdout
    assert "fd00::2/64" in shown and "fe80::" in shown
    assert "tentative" not in shown  # usable at once: no DAD
    assert {key: Path("/proc/sys", key).read_text() for key, _ in NAMESPACE_SYSCTLS} == root_before
