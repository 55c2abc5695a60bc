"""What nftables is asked to do for isolation group memberships (no kernel:
the batches are recorded): one batch of two set elements per member, whatever
the group's size; the group's sets and rule come with its first member and go
with its last."""

from __future__ import annotations

from typing import Any

import pytest

from netsim.kernel.base import Filter, Isolated
from netsim.kernel.linux import nft_isolation
from netsim.kernel.linux.nft import NftNamespace

HANDLE = 42


class Recorder:
    """Stands in for NftNamespace._run: keeps each batch, echoes a handle for an inserted rule."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []

    def __call__(self, commands: list[dict[str, Any]], *, echo: bool = False) -> list[dict[str, Any]]:
        self.batches.append(commands)
        echoed: list[dict[str, Any]] = []
        for command in commands:
            for verb in ("insert", "add"):
                rule = command.get(verb, {}).get("rule")
                if rule is not None and echo:
                    echoed.append({verb: {"rule": {**rule, "handle": HANDLE}}})
        return echoed


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> tuple[NftNamespace, Recorder]:
    space = NftNamespace("netsim-test-h", backend="process")
    recorder = Recorder()
    monkeypatch.setattr(space, "_run", recorder)
    return space, recorder


def verbs(batch: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(verb, next(iter(body))) for command in batch for verb, body in command.items()]


def test_a_member_costs_one_batch_of_two_elements_whatever_the_group_size(
    recorded: tuple[NftNamespace, Recorder],
) -> None:
    space, recorder = recorded
    space.add(Isolated("br0"), {})
    first = recorder.batches[-1]
    assert ("insert", "rule") in verbs(first) and verbs(first).count(("add", "set")) == 2
    assert space.isolation["bridge"].handle == HANDLE
    for n in range(1, 200):
        space.add(Isolated(f"br{n}"), {})
        assert verbs(recorder.batches[-1]) == [("add", "element"), ("add", "element")]
    assert recorder.batches[-1] == nft_isolation.add_member("bridge", "br199")
    space.delete(Isolated("br100"))
    assert recorder.batches[-1] == nft_isolation.delete_member("bridge", "br100")
    assert len(space.isolation["bridge"].members) == 199 and len(space.rules()) == 199


def test_the_last_member_takes_the_group_rule_and_sets(recorded: tuple[NftNamespace, Recorder]) -> None:
    space, recorder = recorded
    space.add(Filter("drop", in_iface="a", out_iface="b"), {})
    space.add(Isolated("br0"), {})
    space.add(Isolated("br0", group="other"), {})
    space.delete(Isolated("br0"))
    assert recorder.batches[-1] == nft_isolation.delete_member("bridge", "br0") + nft_isolation.delete_group(
        "bridge", HANDLE
    )
    assert list(space.isolation) == ["other"]
    assert space.rules() == [Filter("drop", in_iface="a", out_iface="b"), Isolated("br0", group="other")]
    # A new member makes the group again, with its sets and rule.
    space.add(Isolated("br1"), {})
    assert ("insert", "rule") in verbs(recorder.batches[-1])


def test_the_group_rule_drops_between_different_members_only() -> None:
    (rule,) = [c["insert"]["rule"] for c in nft_isolation.create_group("bridge") if "insert" in c]
    members, pairs = "@" + nft_isolation.members_set("bridge"), "@" + nft_isolation.pairs_set("bridge")
    assert rule["chain"] == "forward" and rule["expr"][-1] == {"drop": None}
    matches = [e["match"] for e in rule["expr"][:-1]]
    assert [(m["op"], m["right"]) for m in matches] == [("==", members), ("==", members), ("!=", pairs)]
