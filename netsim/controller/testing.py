"""Fault injection for rollback tests: proxies for the kernel, IPAM drivers and
network drivers that share one :class:`FaultInjector` and raise at its N-th call.

With ``injector.arm(n)`` the n-th call through any proxy raises (once);
:func:`every_step_fails` runs an operation once per step that it makes and
checks that each failure left kernel, IPAM and store exactly as before.
"""

from __future__ import annotations

import errno
import ipaddress
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from netsim.driverapi import Driver
from netsim.errors import ConflictError, InvalidParameterError, NetsimError, NoSpaceError, NotFoundError, kernel_error
from netsim.ipamapi import Ipam, IpamCapability
from netsim.kernel.base import Kernel

if TYPE_CHECKING:
    from netsim.controller import Controller

# Kernel attributes that are plain data or views the tests take themselves.
_KERNEL_PASSTHROUGH = frozenset({"kind", "run_id", "prefix", "ns", "snapshot", "namespaces", "explicit_macs", "close"})


class InjectedFault(NetsimError):
    """A driver or IPAM failure raised on purpose."""

    kind = "injected"


class FaultInjector:
    """Counts calls; the armed one raises. O(1) per call."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail_at: int | None = None
        self.fired: str | None = None
        self.fired_error: Exception | None = None
        self.log: list[str] = []

    def arm(self, n: int) -> None:
        self.calls, self.fail_at, self.fired, self.fired_error = 0, n, None, None
        self.log.clear()

    def disarm(self) -> None:
        self.calls, self.fail_at = 0, None
        self.log.clear()

    def tick(self, what: str, make_error: Callable[[str], Exception]) -> None:
        self.calls += 1
        self.log.append(what)
        if self.fail_at is not None and self.calls == self.fail_at:
            self.fail_at = None  # fire once: the rollback itself must run unharmed
            self.fired = what
            self.fired_error = make_error(what)
            raise self.fired_error


def _kernel_fault(what: str) -> Exception:
    return kernel_error(errno.EIO, f"injected kernel fault at {what}")


def _fault(what: str) -> Exception:
    return InjectedFault(f"injected fault at {what}")


class FaultyKernel:
    """Duck-typed :class:`Kernel` proxy (drivers and controller only use the contract)."""

    def __init__(self, inner: Kernel, injector: FaultInjector) -> None:
        self.inner = inner
        self.injector = injector

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.inner, name)
        if name in _KERNEL_PASSTHROUGH or name.startswith("_") or not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            self.injector.tick(f"kernel.{name}{args}", _kernel_fault)
            return value(*args, **kwargs)

        return call


class FaultyIpam(Ipam):
    """An :class:`Ipam` proxy that also tracks what is held (pools and addresses)."""

    def __init__(self, inner: Ipam, injector: FaultInjector) -> None:
        self.inner = inner
        self.injector = injector
        self.held: Counter[str] = Counter()

    def _tick(self, what: str) -> None:
        self.injector.tick(f"ipam.{what}", _fault)

    def get_default_address_spaces(self) -> tuple[str, str]:
        return self.inner.get_default_address_spaces()

    def request_pool(self, address_space: str, pool: str, sub_pool: str, options: Any, v6: bool) -> Any:
        self._tick(f"request_pool({pool!r})")
        result = self.inner.request_pool(address_space, pool, sub_pool, options, v6)
        self.held[f"pool {result[0]}"] += 1
        return result

    def release_pool(self, pool_id: str) -> None:
        self._tick(f"release_pool({pool_id!r})")
        self.inner.release_pool(pool_id)
        self.held[f"pool {pool_id}"] -= 1

    def request_address(self, pool_id: str, preferred: Any, options: Any) -> Any:
        self._tick(f"request_address({pool_id!r}, {preferred})")
        result = self.inner.request_address(pool_id, preferred, options)
        if result is not None and result[0] is not None:
            self.held[f"{pool_id} {result[0].ip}"] += 1
        return result

    def release_address(self, pool_id: str, address: Any) -> None:
        self._tick(f"release_address({pool_id!r}, {address})")
        self.inner.release_address(pool_id, address)
        self.held[f"{pool_id} {address}"] -= 1

    def is_builtin(self) -> bool:
        return self.inner.is_builtin()

    def capabilities(self) -> IpamCapability:
        return self.inner.capabilities()

    def holding(self) -> dict[str, int]:
        return {k: v for k, v in self.held.items() if v}


class FaultyDriver(Driver):
    """A :class:`Driver` proxy failing at the armed call."""

    def __init__(self, inner: Driver, injector: FaultInjector) -> None:
        self.inner = inner
        self.injector = injector

    def _call(self, name: str, *args: Any) -> Any:
        self.injector.tick(f"driver.{name}", _fault)
        return getattr(self.inner, name)(*args)

    def network_allocate(self, nid: str, options: Any, ipv4_data: Any, ipv6_data: Any) -> dict[str, str]:
        return self._call("network_allocate", nid, options, ipv4_data, ipv6_data)  # type: ignore[no-any-return]

    def network_free(self, nid: str) -> None:
        self._call("network_free", nid)

    def create_network(self, nid: str, options: Any, ninfo: Any, ipv4_data: Any, ipv6_data: Any) -> None:
        self._call("create_network", nid, options, ninfo, ipv4_data, ipv6_data)

    def delete_network(self, nid: str) -> None:
        self._call("delete_network", nid)

    def create_endpoint(self, nid: str, eid: str, ifinfo: Any, options: Any) -> None:
        self._call("create_endpoint", nid, eid, ifinfo, options)

    def delete_endpoint(self, nid: str, eid: str) -> None:
        self._call("delete_endpoint", nid, eid)

    def endpoint_oper_info(self, nid: str, eid: str) -> dict[str, Any]:
        return self._call("endpoint_oper_info", nid, eid)  # type: ignore[no-any-return]

    def join(self, nid: str, eid: str, sbox_key: str, jinfo: Any, options: Any) -> None:
        self._call("join", nid, eid, sbox_key, jinfo, options)

    def leave(self, nid: str, eid: str) -> None:
        self._call("leave", nid, eid)

    def program_external_connectivity(self, nid: str, eid: str, options: Any) -> None:
        self._call("program_external_connectivity", nid, eid, options)

    def revoke_external_connectivity(self, nid: str, eid: str) -> None:
        self._call("revoke_external_connectivity", nid, eid)

    def type(self) -> str:
        return self.inner.type()

    def is_builtin(self) -> bool:
        return self.inner.is_builtin()


def install_faults(ctrl: Controller, injector: FaultInjector) -> dict[str, FaultyIpam]:
    """Wrap every registered network and IPAM driver of ``ctrl`` (the kernel is
    wrapped by building the controller on a :class:`FaultyKernel`)."""
    for name, entry in ctrl.registry.drivers().items():
        ctrl.registry.replace_driver(name, FaultyDriver(entry.driver, injector))
    ipams = {}
    for name, ipam_entry in ctrl.registry.ipam_drivers().items():
        ipams[name] = FaultyIpam(ipam_entry.driver, injector)
        ctrl.registry.replace_ipam_driver(name, ipams[name])
    return ipams


def store_dump(ctrl: Controller) -> dict[str, str]:
    return {pair.key: pair.value for pair in ctrl.store.list("")}


def every_step_fails(
    ctrl: Controller,
    kernel: Kernel,
    injector: FaultInjector,
    ipams: dict[str, FaultyIpam],
    operation: Callable[[], object],
    max_steps: int = 500,
) -> int:
    """Run ``operation`` with a fault at step 1, 2, ... until it succeeds; after
    each failure assert that the kernel snapshot, IPAM holdings and store are
    unchanged. Returns the number of steps the operation takes."""
    before = (kernel.snapshot(), {n: i.holding() for n, i in ipams.items()}, store_dump(ctrl))
    for step in range(1, max_steps + 1):
        injector.arm(step)
        try:
            operation()
        except NetsimError as exc:
            fired = injector.fired
            if exc is not injector.fired_error:
                raise  # the operation failed on its own (the fault, if any, hit its rollback)
            after = (kernel.snapshot(), {n: i.holding() for n, i in ipams.items()}, store_dump(ctrl))
            for label, old, new in zip(("kernel snapshot", "IPAM", "store"), before, after, strict=True):
                assert old == new, f"fault at step {step} ({fired}) left the {label} changed"
            continue
        finally:
            injector.disarm()
        return step - 1
    raise AssertionError(f"operation did not complete within {max_steps} steps")


@dataclass
class _SimplePool:
    net: Any
    #: allocatable integers, inclusive (the ip-range, minus reserved addresses)
    first: int
    last: int
    used: set[int] = field(default_factory=set)
    #: no free address below this one (first-fit without rescanning)
    low_free: int = 0


class SimpleIpam(Ipam):
    """A first-fit IPAM for tests, registered as "default" only when the real
    ``ipam.default`` is not installed. Amortized O(1) per allocation in
    ascending order; a release moves the first-fit cursor back."""

    def __init__(self) -> None:
        self.pools: dict[str, _SimplePool] = {}
        self._next_id = 0
        self._dynamic = ipaddress.ip_network("172.30.0.0/16").subnets(new_prefix=24)

    def get_default_address_spaces(self) -> tuple[str, str]:
        return ("LocalDefault", "GlobalDefault")

    def request_pool(self, address_space: str, pool: str, sub_pool: str, options: Any, v6: bool) -> Any:
        if not pool and v6:
            raise InvalidParameterError("SimpleIpam has no default IPv6 pool")
        net: Any = ipaddress.ip_network(pool) if pool else next(self._dynamic)
        for other in self.pools.values():
            if other.net.overlaps(net):
                raise ConflictError(f"pool {net} overlaps with {other.net}")
        span = ipaddress.ip_network(sub_pool) if sub_pool else net
        first, last = int(span.network_address), int(span.broadcast_address)
        # The parent's network address (and IPv4 broadcast) are never handed out.
        first = max(first, int(net.network_address) + 1)
        if net.version == 4 and net.prefixlen < 31:
            last = min(last, int(net.broadcast_address) - 1)
        self._next_id += 1
        pool_id = f"{address_space}/{net}/{self._next_id}"
        self.pools[pool_id] = _SimplePool(net, first, last, low_free=first)
        return pool_id, net, {}

    def _pool(self, pool_id: str) -> _SimplePool:
        if pool_id not in self.pools:
            raise NotFoundError(f"pool {pool_id!r} not found")
        return self.pools[pool_id]

    def release_pool(self, pool_id: str) -> None:
        self._pool(pool_id)
        del self.pools[pool_id]

    def request_address(self, pool_id: str, preferred: Any, options: Any) -> Any:
        pool = self._pool(pool_id)
        if preferred is not None:
            if preferred not in pool.net:
                raise InvalidParameterError(f"address {preferred} out of range of {pool.net}")
            if int(preferred) in pool.used:
                raise ConflictError(f"address {preferred} already allocated")
            pool.used.add(int(preferred))
            return ipaddress.ip_interface(f"{preferred}/{pool.net.prefixlen}"), {}
        candidate = pool.low_free
        while candidate <= pool.last and candidate in pool.used:
            candidate += 1
        pool.low_free = candidate
        if candidate > pool.last:
            raise NoSpaceError(f"no address left in pool {pool.net}")
        pool.used.add(candidate)
        address = ipaddress.ip_address(candidate)
        return ipaddress.ip_interface(f"{address}/{pool.net.prefixlen}"), {}

    def release_address(self, pool_id: str, address: Any) -> None:
        pool = self._pool(pool_id)
        pool.used.discard(int(address))
        if pool.first <= int(address) < pool.low_free:
            pool.low_free = int(address)

    def is_builtin(self) -> bool:
        return True


def ensure_default_ipam(ctrl: Controller) -> bool:
    """Register :class:`SimpleIpam` as "default" if ipam.default is missing; True if it did."""
    if "default" in ctrl.registry.ipam_drivers():
        return False
    ctrl.registry.register_ipam_driver("default", SimpleIpam())
    return True
