"""netsim's pytest plugin: kernels as fixtures, and real-kernel tests that
may skip only when the machine cannot run them.

* ``netsim_kernel_factory(kind)`` builds a kernel with a fresh per-run prefix
  and closes it (and checks that none of its namespaces is left) at teardown.
* Tests marked ``linux`` skip with a reason where the real kernel is not
  usable, except with ``NETSIM_REQUIRE_LINUX=1``: then such a skip fails.
"""

from __future__ import annotations

import os
import secrets
import signal
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from netsim.errors import NetsimError
from netsim.interrupts import interrupting_handler
from netsim.kernel import make_kernel
from netsim.kernel.base import Kernel
from netsim.safety import linux_unavailable_reason, namespaces_with_prefix

if TYPE_CHECKING:
    from netsim.conformance.target import DriverTarget as ConformanceTarget

REQUIRE_ENV = "NETSIM_REQUIRE_LINUX"


def require_linux() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0", "false", "no")


def skip_unless_linux() -> None:
    """Skip (or fail, when required) the calling test if Linux mode cannot run."""
    reason = linux_unavailable_reason()
    if reason is None:
        return
    if require_linux():
        pytest.fail(f"{REQUIRE_ENV}=1 but the real kernel is unusable: {reason}")
    pytest.skip(f"real kernel unavailable: {reason}")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("netsim", "netsim conformance suite")
    group.addoption(
        "--netsim-driver",
        default=None,
        help="driver under test: a registered name, module:Class, module:init, unix:///path.sock or plugin:NAME",
    )
    group.addoption(
        "--netsim-kernel", default="fake", choices=["fake", "linux"], help="kernel to run on (default: fake)"
    )
    group.addoption(
        "--netsim-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="driver option given to every network the suite creates (repeatable)",
    )
    group.addoption(
        "--netsim-plugin-cmd",
        default=None,
        metavar="CMD ARGS",
        help="a Docker plugin program to test (any language); netsim starts it for every check inside the "
        "simulated host (with --netsim-plugin-name)",
    )
    group.addoption(
        "--netsim-plugin-name",
        default=None,
        metavar="NAME",
        help="the plugin's name: it serves /run/docker/plugins/NAME.sock (or NAME.spec / NAME.json)",
    )


def conformance_target(config: pytest.Config) -> ConformanceTarget:
    """The driver named by the command line options (the suite needs one)."""
    from netsim.conformance.target import DriverTarget, check_target, parse_options
    from netsim.plugin.launcher import parse_command

    spec = config.getoption("--netsim-driver")
    command = config.getoption("--netsim-plugin-cmd")
    plugin_name = config.getoption("--netsim-plugin-name")
    if command or plugin_name:
        if not (command and plugin_name) or spec:
            pytest.exit(
                "--netsim-plugin-cmd and --netsim-plugin-name go together, without --netsim-driver", returncode=4
            )
        spec = plugin_name
    if not spec:
        pytest.exit(
            "the conformance suite needs --netsim-driver=NAME|module:Class|unix:///path.sock "
            "or --netsim-plugin-cmd CMD --netsim-plugin-name NAME",
            returncode=4,
        )
    try:
        options = parse_options(config.getoption("--netsim-option"))
        argv = tuple(parse_command(command)) if command else ()
    except NetsimError as exc:
        pytest.exit(str(exc), returncode=4)
    kernel = str(config.getoption("--netsim-kernel"))
    target = DriverTarget(spec=str(spec), kernel=kernel, options=options, plugin_cmd=argv)
    try:
        check_target(target)
    except NetsimError as exc:
        pytest.exit(str(exc), returncode=4)
    return target


def _real_kernel_line(terminalreporter: Any) -> str | None:
    """How many real-kernel (``linux``-marked) tests ran, and how many of them
    passed: the proof in a CI log that they ran, whatever the output mode
    (pytest-xdist prints no test names)."""
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for outcome in counts:
        for report in terminalreporter.stats.get(outcome, []):
            is_call = getattr(report, "when", "call") == "call" or outcome == "skipped"
            if is_call and "linux" in getattr(report, "keywords", {}):
                counts[outcome] += 1
    if not any(counts.values()):
        return None
    return f"real-kernel tests: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """How many real-kernel tests ran; one line per conformance contract area:
    passed, failed, skipped."""
    real_kernel = _real_kernel_line(terminalreporter)
    if real_kernel is not None:
        terminalreporter.write_sep("=", "netsim")
        terminalreporter.write_line(real_kernel)
    areas: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            area = dict(getattr(report, "user_properties", ())).get("netsim_area")
            if area is None or (outcome == "passed" and getattr(report, "when", "call") != "call"):
                continue
            areas.setdefault(str(area), {}).setdefault(outcome, 0)
            areas[str(area)][outcome] += 1
    if not areas:
        return
    target = config.getoption("--netsim-driver") or config.getoption("--netsim-plugin-cmd")
    terminalreporter.write_sep("=", f"netsim conformance: {target} on {config.getoption('--netsim-kernel')} kernel")
    for area in sorted(areas):
        counts = areas[area]
        verdict = "FAIL" if counts.get("failed") or counts.get("error") else "ok"
        detail = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        terminalreporter.write_line(f"  {area:<14} {verdict:<5} {detail}")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Under pytest-xdist (``-n``; the conformance suite runs there too)
    pytest-benchmark turns itself off and warns so in every process: turn it
    off first, quietly. (Before xdist's own hook, which leaves a worker's
    ``numprocesses`` empty: a worker is known by its ``workerinput``.)"""
    distributed = hasattr(config, "workerinput") or bool(getattr(config.option, "numprocesses", None))
    if distributed and hasattr(config.option, "benchmark_disable"):
        config.option.benchmark_disable = True


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "linux: needs the real Linux kernel (root, network namespaces)")
    config.stash[_SESSION_KEY] = _session_token(config)
    config.stash[_COUNTER_KEY] = [0]
    # SIGTERM (CI runners, timeout) would kill pytest without running fixture
    # teardown, leaving every namespace of the session: make it a KeyboardInterrupt,
    # which pytest stops on after tearing the fixtures down. SIGINT too, so that a
    # process forked by pyroute2 exits instead of unwinding pytest's copied stack.
    # Only over the default handlers.
    if threading.current_thread() is threading.main_thread():
        handler = interrupting_handler()
        defaults = {signal.SIGTERM: signal.SIG_DFL, signal.SIGINT: signal.default_int_handler}
        config.stash[_SIGNALS_KEY] = {
            sig: signal.signal(sig, handler) for sig, default in defaults.items() if signal.getsignal(sig) is default
        }


def pytest_unconfigure(config: pytest.Config) -> None:
    if threading.current_thread() is threading.main_thread():
        for sig, previous in config.stash.get(_SIGNALS_KEY, {}).items():
            signal.signal(sig, previous)


_SESSION_KEY = pytest.StashKey[str]()
_COUNTER_KEY = pytest.StashKey[list[int]]()
_SIGNALS_KEY = pytest.StashKey[dict[Any, Any]]()


def _base36(number: int, width: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    for _ in range(width):
        number, digit = divmod(number, 36)
        out = digits[digit] + out
    return out


def _session_token(config: pytest.Config) -> str:
    """Six characters every kernel of this session's run id starts with:
    random, or under pytest-xdist four shared by the whole run and two naming
    this worker, so that no two workers of one run ever share a prefix. Fixed
    width: a kernel's counter follows it (``ab01`` + ``1`` must not be read as
    another worker's ``ab011``), and tests append to it within NETSIM_RUN_ID's
    12 characters."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        return _base36(secrets.randbits(64), 6)
    number = int(str(workerinput["workerid"]).removeprefix("gw"))
    run = int(str(workerinput.get("testrunuid") or secrets.token_hex(8)), 16)
    return _base36(run, 4) + _base36(number, 2)


def session_run_prefix(config: pytest.Config) -> str:
    """Every kernel made through the fixtures has a run id starting with this."""
    return config.stash[_SESSION_KEY]


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("linux") is not None:
        skip_unless_linux()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and require_linux() and item.get_closest_marker("linux") is not None:
        report.outcome = "failed"
        report.longrepr = f"{REQUIRE_ENV}=1 forbids skipping real-kernel tests: {report.longrepr}"


@pytest.fixture
def netsim_kernel_factory(request: pytest.FixtureRequest) -> Iterator[Callable[[str], Kernel]]:
    """Build kernels (``"fake"`` or ``"linux"``); all are closed after the test,
    and the test fails if one left a namespace behind."""
    made: list[Kernel] = []
    config = request.config

    def factory(kind: str) -> Kernel:
        if kind == "linux":
            skip_unless_linux()
        counter = config.stash[_COUNTER_KEY]
        counter[0] += 1
        kernel = make_kernel(kind, f"{session_run_prefix(config)}{counter[0]:x}")
        made.append(kernel)
        return kernel

    try:
        yield factory
    finally:
        errors = []
        for kernel in reversed(made):
            try:
                kernel.close()
            except Exception as exc:  # report every kernel, not just the first
                errors.append(f"{kernel.kind} kernel {kernel.run_id}: close failed: {exc!r}")
            if kernel.kind == "linux":
                left = namespaces_with_prefix(kernel.prefix)
                if left:
                    errors.append(f"namespaces left behind: {left}")
        if errors:
            pytest.fail("; ".join(errors))
