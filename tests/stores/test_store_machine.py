"""A hypothesis state machine drives each backend and a plain dict side by
side: same values, same versions, same errors, same listings."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from netsim.errors import ConflictError, NotFoundError
from netsim.store import MUST_NOT_EXIST, KVStore

# Sized so the four backends together stay well under a minute.
EXAMPLES = {"memory": 150, "sqlite": 50, "etcd": 40, "zk": 30}

keys = st.sampled_from(["network/a", "network/ab", "network/a/x", "endpoint/a/1", "endpoint/a/2", "netw", "é/1"])
prefixes = st.sampled_from(["", "n", "network/", "network/a", "network/a/", "endpoint/a/", "é", "zz"])
values = st.text(max_size=4).filter(
    lambda text: text.encode("utf-8", "surrogatepass") == text.encode("utf-8", "ignore")
)


class StoreMachine(RuleBasedStateMachine):
    """Keys live under a fresh namespace per example, so one store serves all examples."""

    store: KVStore

    def __init__(self) -> None:
        super().__init__()
        self.ns = "m" + uuid.uuid4().hex[:10] + "/"
        self.model: dict[str, tuple[str, int]] = {}
        self.last_version = 0

    def _written(self, key: str, value: str, version: int) -> None:
        assert version > self.last_version, "versions must grow with every write"
        self.last_version = version
        self.model[key] = (value, version)

    @rule(key=keys, value=values)
    def put(self, key: str, value: str) -> None:
        self._written(key, value, self.store.put(self.ns + key, value))

    @rule(key=keys, value=values, stale=st.booleans())
    def compare_and_set(self, key: str, value: str, stale: bool) -> None:
        current = self.model.get(key)
        expected = MUST_NOT_EXIST if current is None else current[1]
        if stale and current is not None:
            with pytest.raises(ConflictError):
                self.store.put(self.ns + key, value, previous_version=expected - 1 if expected > 1 else 10**12)
        elif stale:
            with pytest.raises(NotFoundError):
                self.store.put(self.ns + key, value, previous_version=self.last_version + 1)
        else:
            self._written(key, value, self.store.put(self.ns + key, value, previous_version=expected))

    @rule(key=keys, value=values)
    def create(self, key: str, value: str) -> None:
        if key in self.model:
            with pytest.raises(ConflictError, match="exists already"):
                self.store.put(self.ns + key, value, previous_version=MUST_NOT_EXIST)
        else:
            self._written(key, value, self.store.put(self.ns + key, value, previous_version=MUST_NOT_EXIST))

    @rule(key=keys, conditional=st.booleans())
    def delete(self, key: str, conditional: bool) -> None:
        current = self.model.pop(key, None)
        if current is None:
            with pytest.raises(NotFoundError):
                self.store.delete(self.ns + key)
        else:
            self.store.delete(self.ns + key, previous_version=current[1] if conditional else None)

    @rule(key=keys)
    def get(self, key: str) -> None:
        if key in self.model:
            pair = self.store.get(self.ns + key)
            assert (pair.value, pair.version) == self.model[key]
        else:
            with pytest.raises(NotFoundError):
                self.store.get(self.ns + key)
        assert self.store.exists(self.ns + key) == (key in self.model)

    @rule(prefix=prefixes)
    def list(self, prefix: str) -> None:
        got = [(p.key[len(self.ns) :], p.value, p.version) for p in self.store.list(self.ns + prefix)]
        assert got == sorted((k, v, n) for k, (v, n) in self.model.items() if k.startswith(prefix))

    @invariant()
    def everything_listed(self) -> None:
        assert {p.key[len(self.ns) :] for p in self.store.list(self.ns)} == set(self.model)


def test_store_against_a_dict(store: KVStore, store_kind: str) -> None:
    class Machine(StoreMachine):
        pass

    Machine.store = store
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=EXAMPLES[store_kind],
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
