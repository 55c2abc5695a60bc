"""A deterministic corpus of hostile scenario inputs (issue 16), written into a
directory by :func:`write_corpus`.

Each case is a file (or a FIFO, a symlink to a device, a directory, a sparse
file past the size cap) with the words its one-line error must contain: the
key path when the problem is a key, ``line N`` or the reason when the problem
is the file itself. Everything is generated from a small valid scenario by
mutation, so the corpus is reproducible and needs no committed binary data.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from netsim.scenario.reading import MAX_SCENARIO_BYTES

#: a small valid scenario every structural case starts from
BASE: dict[str, Any] = {
    "name": "base",
    "networks": [
        {"name": "front", "ipam": {"subnet": "10.30.0.0/24", "gateway": "10.30.0.1"}},
        {"name": "back", "driver": "bridge", "options": {"com.docker.network.bridge.enable_icc": "true"}},
    ],
    "containers": [
        {"name": "web", "networks": ["front", "back"], "listen": ["tcp/80"], "publish": ["8080:80"]},
        {"name": "db", "networks": [{"network": "back"}], "listen": ["tcp/5432"]},
    ],
    "expect": [
        {"from": "web", "to": "db", "proto": "tcp", "port": 5432},
        {"from": "outside", "to": "published:8080", "proto": "tcp"},
    ],
}


@dataclass(frozen=True)
class Case:
    name: str
    #: writes the input at the given path
    make: Callable[[Path], None]
    #: words the error line must contain (beside the file name)
    expect: str


def _bytes(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


def _doc(doc: object) -> Callable[[Path], None]:
    return lambda path: path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def _edit(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    doc = copy.deepcopy(BASE)
    change(doc)
    return _doc(doc)


def _set(keys: list[Any], value: object) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        node: Any = doc
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return change


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _symlink(target: str) -> Callable[[Path], None]:
    return lambda path: path.symlink_to(target)


def _sparse(path: Path) -> None:
    with path.open("wb") as handle:
        handle.truncate(MAX_SCENARIO_BYTES + 1)


def _file_cases() -> list[Case]:
    valid = yaml.safe_dump(BASE, sort_keys=False)
    cases = [
        Case("latin1", _bytes("name: caf\xe9\n".encode("latin-1")), "not UTF-8 text at line 1"),
        Case("latin1-line3", _bytes(b"name: a\nnetworks: []\n# \xe9\xe8\n"), "not UTF-8 text at line 3"),
        Case("utf16le", _bytes(valid.encode("utf-16")), "UTF-16"),
        Case("utf16be", _bytes(b"\xfe\xff" + valid.encode("utf-16-be")), "UTF-16"),
        Case("utf32", _bytes(valid.encode("utf-32")), "UTF-16 or UTF-32"),
        Case("utf16-no-bom", _bytes(valid.encode("utf-16-le")), "invalid YAML"),
        Case("lone-continuation", _bytes(b"name: \x80\n"), "not UTF-8 text at line 1"),
        Case("truncated-utf8", _bytes(b"name: \xe2\x82\n"), "not UTF-8 text at line 1"),
        Case("overlong-utf8", _bytes(b"name: \xc0\xaf\n"), "not UTF-8 text"),
        Case("surrogate-utf8", _bytes(b"name: \xed\xa0\x80\n"), "not UTF-8 text"),
        Case("nul-byte", _bytes(b"name: a\x00b\n"), "invalid YAML"),
        Case("control-char", _bytes(b"name: a\x07b\n"), "invalid YAML"),
        Case("fifo", _fifo, "not a regular file (a FIFO)"),
        Case("dev-zero", _symlink("/dev/zero"), "not a regular file (a character device)"),
        Case("dev-null", _symlink("/dev/null"), "not a regular file (a character device)"),
        Case("dangling-link", _symlink("/nonexistent/netsim-hostile"), "cannot read file"),
        Case("directory", lambda path: path.mkdir(), "directory"),  # run expands it: "no *.yaml ... in this directory"
        Case("too-large", _sparse, "file too large"),
        Case("empty", _bytes(b""), "expected a mapping, got nothing"),
        Case("only-comment", _bytes(b"# nothing\n"), "expected a mapping, got nothing"),
        Case("top-list", _bytes(b"- a\n- b\n"), "expected a mapping, got list"),
        Case("top-int", _bytes(b"42\n"), "expected a mapping, got int"),
        Case("top-string", _bytes(b"hello\n"), "expected a mapping, got str"),
        Case("huge-int-top", _bytes(b"name: " + b"9" * 5000 + b"\n"), "integer too long"),
        Case("huge-int-port", _bytes(b"name: a\ncontainers:\n- {name: c, listen: [" + b"7" * 6000 + b"]}\n"), "line 3"),
        Case("huge-int-hex", _bytes(b"name: 0x" + b"f" * 5000 + b"\n"), "integer too long"),
        Case("deep-flow-list", _bytes(b"[" * 100_000 + b"]" * 100_000), "nested deeper than"),
        Case("deep-flow-map", _bytes(b"{a: " * 50_000 + b"1" + b"}" * 50_000), "nested deeper than"),
        Case("deep-block", _bytes(b"- " * 30_000 + b"x\n"), "nested deeper than"),
        Case("deep-unclosed", _bytes(b"[" * 100_000), "nested deeper than"),
        Case("dup-top", _bytes(b"name: a\nname: b\n"), "duplicate key 'name' (first at line 1)"),
        Case("dup-network-key", _bytes(b"networks:\n- name: a\n  driver: bridge\n  name: b\n"), "line 4"),
        Case("dup-in-flow", _bytes(b"containers: [{name: a, name: b}]\n"), "duplicate key 'name'"),
        Case("dup-options", _bytes(b"networks:\n- name: a\n  options: {x: '1', x: '2'}\n"), "duplicate key 'x'"),
        Case(
            "dup-ipam",
            _bytes(b"networks:\n- name: a\n  ipam:\n    subnet: 10.1.0.0/24\n    subnet: 10.2.0.0/24\n"),
            "line 5",
        ),
        Case("tab-indent", _bytes(b"networks:\n\t- name: a\n"), "invalid YAML"),
        Case("unclosed-quote", _bytes(b'name: "abc\n'), "invalid YAML"),
        Case("unclosed-flow", _bytes(b"networks: [a, b\n"), "invalid YAML"),
        Case("undefined-alias", _bytes(b"name: *nothing\n"), "invalid YAML"),
        Case("python-tag", _bytes(b"name: !!python/object:os.system ls\n"), "invalid YAML"),
        Case("two-documents", _bytes(b"name: a\n---\nname: b\n"), "invalid YAML"),
        Case(
            "alias-bomb",
            _bytes(b"a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b]\n"),
            "unknown key 'a'",
        ),
        Case("unhashable-key", _bytes(b"? [a, b]\n: 1\n"), "invalid YAML"),
    ]
    return cases


def _shape_cases() -> list[Case]:
    """Wrong types and values at every key of the base scenario."""
    junk: list[tuple[str, object]] = [
        ("null", None),
        ("int", 7),
        ("list", ["x"]),
        ("map", {"x": 1}),
        ("bool", True),
        ("long", "x" * 10_000),
        ("spaces", "two words"),
        ("newline", "a\nb"),
    ]
    where: list[tuple[list[Any], str]] = [
        (["name"], "name"),
        (["networks", 0, "name"], "networks[0].name"),
        (["networks", 0, "ipam", "subnet"], "networks[0].ipam.subnet"),
        (["networks", 0, "ipam", "gateway"], "networks[0].ipam.gateway"),
        (["containers", 0, "name"], "containers[0].name"),
        (["containers", 0, "listen", 0], "containers[0].listen[0]"),
        (["containers", 0, "publish", 0], "containers[0].publish[0]"),
        (["containers", 1, "networks", 0, "network"], "containers[1].networks[0].network"),
        (["expect", 0, "from"], "expect[0].from"),
        (["expect", 0, "port"], "expect[0].port"),
    ]
    cases = []
    for keys, path in where:
        for label, value in junk:
            if label in ("int", "long") and keys[-1] in ("name", "from", "network"):
                continue  # an int is a valid name, and so is a long one up to a point: other cases cover it
            if label == "null" and keys[-1] in ("gateway", "port"):
                continue  # null means unset for optional keys
            cases.append(Case(f"shape-{path}-{label}", _edit(_set(keys, value)), path))
    cases += [
        Case("top-unknown-key", _edit(_set(["colour"], "blue")), "colour"),
        Case("network-unknown-key", _edit(_set(["networks", 0, "colour"], "x")), "networks[0].colour"),
        Case("networks-not-list", _edit(_set(["networks"], {"a": 1})), "networks"),
        Case("containers-string", _edit(_set(["containers"], "web")), "containers"),
        Case("name-999-chars", _edit(_set(["networks", 0, "name"], "n" * 999)), "networks[0].name"),
        Case("port-zero", _edit(_set(["containers", 0, "listen", 0], "tcp/0")), "containers[0].listen[0]"),
        Case("port-65536", _edit(_set(["containers", 0, "listen", 0], "tcp/65536")), "containers[0].listen[0]"),
        Case("port-negative", _edit(_set(["expect", 0, "port"], -1)), "expect[0].port"),
        Case("port-huge", _edit(_set(["expect", 0, "port"], 10**30)), "expect[0].port"),
        Case("publish-garbage", _edit(_set(["containers", 0, "publish", 0], "::::")), "containers[0].publish[0]"),
        Case("mac-garbage", _edit(_set(["containers", 1, "networks", 0, "mac"], "zz:zz")), "networks[0].mac"),
        Case("mac-multicast", _edit(_set(["containers", 1, "networks", 0, "mac"], "01:00:5e:00:00:01")), ".mac"),
        Case("subnet-host-bits", _edit(_set(["networks", 0, "ipam", "subnet"], "10.30.0.1/24")), ".ipam.subnet"),
        Case("subnet-v6-in-v4", _edit(_set(["networks", 0, "ipam", "subnet"], "fd00::/64")), ".ipam.subnet"),
        Case("gateway-outside", _edit(_set(["networks", 0, "ipam", "gateway"], "10.31.0.1")), ".ipam.gateway"),
    ]
    return cases


def _meaning_cases() -> list[Case]:
    """What issue 16 found built part-way: each must now be refused at load."""
    opt = ["networks", 1, "options"]

    def network(**fields: Any) -> Callable[[dict[str, Any]], None]:
        return lambda doc: doc["networks"].append({"name": "extra", **fields})

    def crowd(subnet: str, count: int, **ipam_fields: Any) -> Callable[[dict[str, Any]], None]:
        def change(doc: dict[str, Any]) -> None:
            doc["networks"].append({"name": "small", "ipam": {"subnet": subnet, **ipam_fields}})
            doc["containers"] += [{"name": f"s{i}", "networks": ["small"]} for i in range(count)]

        return change

    cases = [
        Case("unknown-driver", _edit(network(driver="no-such-driver")), "networks[2].driver"),
        Case("unknown-ipam", _edit(network(ipam={"driver": "no-such-ipam"})), "networks[2].ipam.driver"),
        Case("macvlan-bad-mode", _edit(network(driver="macvlan", options={"macvlan_mode": "x"})), "macvlan_mode"),
        Case("macvlan-no-such-parent", _edit(network(driver="macvlan", options={"parent": "enp9s0"})), "parent"),
        Case("macvlan-bad-vlan", _edit(network(driver="macvlan", options={"parent": "eth0.5000"})), "parent"),
        Case("macvlan-parent-slash", _edit(network(driver="macvlan", options={"parent": "a/b"})), "parent"),
        Case("overlay-bad-vni", _edit(network(driver="overlay", options={OVERLAY_VNI: "0"})), OVERLAY_VNI),
        Case("overlay-text-vni", _edit(network(driver="overlay", options={OVERLAY_VNI: "abc"})), OVERLAY_VNI),
        Case("icc-maybe", _edit(_set([*opt, f"{BRIDGE}.enable_icc"], "maybe")), f"{BRIDGE}.enable_icc"),
        Case("icc-number", _edit(_set([*opt, f"{BRIDGE}.enable_icc"], 2)), f"{BRIDGE}.enable_icc"),
        Case("masq-yes-please", _edit(_set([*opt, f"{BRIDGE}.enable_ip_masquerade"], "yes please")), "masquerade"),
        Case("bridge-name-16", _edit(_set([*opt, f"{BRIDGE}.name"], "b" * 16)), f"{BRIDGE}.name"),
        Case("bridge-name-slash", _edit(_set([*opt, f"{BRIDGE}.name"], "br/0")), f"{BRIDGE}.name"),
        Case("bridge-name-uplink", _edit(_set([*opt, f"{BRIDGE}.name"], "eth0")), f"{BRIDGE}.name"),
        Case("bridge-name-lo", _edit(_set([*opt, f"{BRIDGE}.name"], "lo")), f"{BRIDGE}.name"),
        Case("bridge-binding-garbage", _edit(_set([*opt, f"{BRIDGE}.host_binding_ipv4"], "x")), "host_binding_ipv4"),
        Case("mtu-too-small", _edit(_set([*opt, MTU], "10")), MTU),
        Case("mtu-too-large", _edit(_set([*opt, MTU], "70000")), MTU),
        Case("mtu-text", _edit(_set([*opt, MTU], "jumbo")), MTU),
        Case("mtu-negative", _edit(_set([*opt, MTU], "-1500")), MTU),
        Case("subnet-32", _edit(network(ipam={"subnet": "10.40.0.0/32"})), "networks[2].ipam.subnet"),
        Case("subnet-31-two", _edit(crowd("10.41.0.0/31", 2)), "containers[3]"),
        Case("subnet-30-three", _edit(crowd("10.42.0.0/30", 2)), "containers[3]"),
        Case("subnet-29-seven", _edit(crowd("10.43.0.0/29", 6)), "containers[7]"),
        Case("range-full", _edit(crowd("10.44.0.0/24", 3, ip_range="10.44.0.0/30")), "containers[4]"),
        Case("subnet-everything", _edit(network(ipam={"subnet": "0.0.0.0/0"})), "networks[2].ipam.subnet"),
        Case("subnet-outside", _edit(network(ipam={"subnet": "198.18.5.0/24"})), "networks[2].ipam.subnet"),
        Case("subnet-underlay", _edit(network(ipam={"subnet": "198.19.0.0/24"})), "networks[2].ipam.subnet"),
        Case("subnet-around-outside", _edit(network(ipam={"subnet": "198.0.0.0/8"})), "networks[2].ipam.subnet"),
        Case("subnet-loopback", _edit(network(ipam={"subnet": "127.1.0.0/16"})), "networks[2].ipam.subnet"),
        Case("subnet-multicast", _edit(network(ipam={"subnet": "239.1.0.0/16"})), "networks[2].ipam.subnet"),
        Case("subnet-link-local", _edit(network(ipam={"subnet": "169.254.3.0/24"})), "networks[2].ipam.subnet"),
        Case("subnet-this-net", _edit(network(ipam={"subnet": "0.1.0.0/16"})), "networks[2].ipam.subnet"),
        Case("v6-link-local", _edit(network(ipv6=True, ipam={"subnet_v6": "fe80::/64"})), "ipam.subnet_v6"),
        Case("v6-multicast", _edit(network(ipv6=True, ipam={"subnet_v6": "ff05::/64"})), "ipam.subnet_v6"),
        Case("v6-mapped", _edit(network(ipv6=True, ipam={"subnet_v6": "::ffff:0:0/96"})), "ipam.subnet_v6"),
        Case("v6-128", _edit(network(ipv6=True, ipam={"subnet_v6": "fd00::1/128"})), "ipam.subnet_v6"),
        Case("v6-127", _edit(network(ipv6=True, ipam={"subnet_v6": "fd00::/127"})), "ipam.subnet_v6"),
        Case("overlap", _edit(network(ipam={"subnet": "10.30.0.128/25"})), "networks[2].ipam.subnet"),
        Case("duplicate-network", _edit(_dup_network), "networks[2].name"),
        Case("duplicate-mac", _edit(_duplicate_mac), "containers[1].networks[0].mac"),
        Case("duplicate-static-ip", _edit(_duplicate_ip), "containers[1].networks[0].ip"),
        Case(
            "static-ip-is-gateway",
            _edit(_set(["containers", 0, "networks", 0], {"network": "front", "ip": "10.30.0.1"})),
            ".ip",
        ),
    ]
    return cases


BRIDGE = "com.docker.network.bridge"
MTU = "com.docker.network.driver.mtu"
OVERLAY_VNI = "com.docker.network.driver.overlay.vxlanid_list"


def _dup_network(doc: dict[str, Any]) -> None:
    doc["networks"].append({"name": "front"})


def _duplicate_mac(doc: dict[str, Any]) -> None:
    doc["containers"][0]["networks"][1] = {"network": "back", "mac": "02:00:00:00:00:07"}
    doc["containers"][1]["networks"][0] = {"network": "back", "mac": "02:00:00:00:00:07"}


def _duplicate_ip(doc: dict[str, Any]) -> None:
    doc["containers"][0]["networks"][0] = {"network": "front", "ip": "10.30.0.9"}
    doc["containers"][1]["networks"] = [{"network": "front", "ip": "10.30.0.9"}]


def corpus() -> list[Case]:
    """Every case, in a fixed order with unique names."""
    cases = _file_cases() + _shape_cases() + _meaning_cases()
    assert len({c.name for c in cases}) == len(cases), "case names must be unique"
    return cases


def write_corpus(directory: Path) -> list[tuple[Case, Path]]:
    """Write every case as ``<name>.yaml`` in ``directory``."""
    out = []
    for case in corpus():
        path = directory / f"{case.name.replace('/', '_')}.yaml"
        case.make(path)
        out.append((case, path))
    return out
