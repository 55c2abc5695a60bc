"""Plugin discovery in configurable directories, Docker's file layout."""

from __future__ import annotations

import doctest
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_plugin_helpers import short_dir

import netsim.plugin.client
import netsim.plugin.discovery
from netsim.errors import InvalidParameterError, NotFoundError
from netsim.plugin.client import ClientConfig, PluginAddress
from netsim.plugin.discovery import PluginSpec, default_name, find_plugin, plugins_from_config, read_spec_file, scan


@pytest.fixture
def plugin_dirs() -> Iterator[tuple[Path, Path]]:
    with short_dir() as root:
        first, second = root / "run", root / "etc"
        first.mkdir()
        second.mkdir()
        yield first, second


def make_socket(path: Path) -> socket.socket:
    path.parent.mkdir(parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    return sock


def test_doctests() -> None:
    for module in (netsim.plugin.discovery, netsim.plugin.client):
        results = doctest.testmod(module)
        assert results.attempted > 0 and results.failed == 0


def test_every_layout_is_found(plugin_dirs: tuple[Path, Path]) -> None:
    run, etc = plugin_dirs
    sockets = [make_socket(run / "flat.sock"), make_socket(run / "nested" / "nested.sock")]
    try:
        (etc / "spec.spec").write_text("  tcp://127.0.0.1:9000\n")
        (etc / "js.json").write_text(json.dumps({"Name": "ignored", "Addr": "unix:///x/js.sock"}))
        (etc / "deep").mkdir()
        (etc / "deep" / "deep.spec").write_text("unix:///x/deep.sock")
        found = scan([run, etc])
    finally:
        for sock in sockets:
            sock.close()
    assert found == [
        PluginSpec("deep", PluginAddress("unix", path="/x/deep.sock"), str(etc / "deep" / "deep.spec")),
        PluginSpec("flat", PluginAddress("unix", path=str(run / "flat.sock")), str(run / "flat.sock")),
        PluginSpec("js", PluginAddress("unix", path="/x/js.sock"), str(etc / "js.json")),
        PluginSpec(
            "nested",
            PluginAddress("unix", path=str(run / "nested" / "nested.sock")),
            str(run / "nested" / "nested.sock"),
        ),
        PluginSpec("spec", PluginAddress("tcp", host="127.0.0.1", port=9000), str(etc / "spec.spec")),
    ]


def test_sockets_win_over_specs(plugin_dirs: tuple[Path, Path]) -> None:
    run, etc = plugin_dirs
    (run / "weave.spec").write_text("tcp://127.0.0.1:1")
    sock = make_socket(etc / "weave.sock")
    try:
        assert find_plugin("weave", [run, etc]).address == PluginAddress("unix", path=str(etc / "weave.sock"))
    finally:
        sock.close()


def test_a_plain_file_named_sock_is_not_a_plugin(plugin_dirs: tuple[Path, Path]) -> None:
    run, _ = plugin_dirs
    (run / "fake.sock").write_text("")
    assert scan([run]) == []
    with pytest.raises(NotFoundError, match="plugin 'fake' not found"):
        find_plugin("fake", [run])


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("a.spec", "/run/a.sock", "no scheme"),
        ("a.spec", "ftp://x:1", "unsupported plugin address scheme"),
        ("a.json", "{bad", "invalid JSON"),
        ("a.json", '{"Name": "a"}', "string Addr"),
        ("a.json", '{"Addr": "tcp://h:1", "TLSConfig": {"CAFile": "/ca"}}', "TLSConfig is not supported"),
    ],
)
def test_broken_spec_files(plugin_dirs: tuple[Path, Path], name: str, content: str, match: str) -> None:
    run, _ = plugin_dirs
    (run / name).write_text(content)
    with pytest.raises(InvalidParameterError, match=match) as info:
        read_spec_file(run / name)
    assert str(run / name) in str(info.value)


def test_missing_directory_holds_nothing(plugin_dirs: tuple[Path, Path]) -> None:
    assert scan([plugin_dirs[0] / "absent"]) == []


def test_invalid_names() -> None:
    for bad in ("", "a/b", ".."):
        with pytest.raises(InvalidParameterError, match="invalid plugin name"):
            find_plugin(bad, ["/nonexistent"])


def test_plugins_from_config(plugin_dirs: tuple[Path, Path]) -> None:
    run, _ = plugin_dirs
    (run / "disc.spec").write_text("tcp://127.0.0.1:5")
    (run / "mine.spec").write_text("tcp://127.0.0.1:6")
    specs, client = plugins_from_config(
        {
            "plugins": [{"name": "mine", "address": "unix:///p/m.sock"}, {"address": "unix:///p/anon.sock"}],
            "options": {"plugin_dirs": [str(run)], "plugin_client": {"timeout": 1.5}},
        }
    )
    assert [(s.name, str(s.address), s.source) for s in specs] == [
        ("mine", "unix:///p/m.sock", "config"),
        ("anon", "unix:///p/anon.sock", "config"),
        ("disc", "tcp://127.0.0.1:5", str(run / "disc.spec")),
    ]
    assert client == ClientConfig(timeout=1.5)
    assert plugins_from_config({}) == ([], ClientConfig())


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"plugins": ["unix:///a.sock"]}, r"plugins\[0\]"),
        ({"plugins": [{"name": 3, "address": "unix:///a.sock"}]}, "name must be a string"),
        ({"plugins": [{"address": "a.sock"}]}, "invalid plugin address"),
        ({"plugin_dirs": "/run/docker/plugins"}, "list of directories"),
        ({"plugin_client": {"timeout": "soon"}}, "invalid plugin client option"),
    ],
)
def test_bad_config(config: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        plugins_from_config(config)


def test_default_name() -> None:
    assert default_name("unix:///run/docker/plugins/weave/weave.sock") == "weave"
    assert default_name("tcp://127.0.0.1:8080") == "127.0.0.1:8080"
