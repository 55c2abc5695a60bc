"""The built-in bridge served by ``netsim plugin serve --builtin bridge
--kernel linux`` as a separate program, launched inside each check's host
(it borrows the host's namespace from NETSIM_PLUGIN_HOST), gives the
conformance suite the same verdicts as the bridge driver in-process: both
must give one verdict table. The in-process run is test_conformance_builtins'
bridge-linux case (it checks the table); the served one (~30 s, mostly one
plugin start per check) runs here in two halves of the suite, which
pytest-xdist runs side by side."""

from __future__ import annotations

import re
import shlex
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import netsim.conformance

pytestmark = pytest.mark.linux


def _verdicts(pytester: pytest.Pytester, *target: str, modules: tuple[str, ...] = ("",)) -> dict[str, str]:
    """The verdicts of the checks of ``modules`` (default: the whole suite)."""
    report = pytester.path / f"report-{len(list(pytester.path.glob('report-*')))}.xml"
    packages = [f"netsim.conformance{'.' if module else ''}{module}" for module in modules]
    pytester.runpytest_inprocess(
        "--pyargs", *packages, "--netsim-kernel=linux", "-q", "-p", "no:cacheprovider",
        f"--junitxml={report}", *target,
    )  # fmt: skip
    verdicts = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        outcomes = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        verdicts[case.get("name", "")] = outcomes[0] if outcomes else "passed"
    return verdicts


#: every check of the conformance suite, by name, per module (a verdict table covers exactly these)
CHECKS_BY_MODULE = {
    module.stem: set(re.findall(r"^def (test_\w+)", module.read_text(), re.M))
    for module in sorted(Path(netsim.conformance.__file__).parent.glob("test_*.py"))
}
CHECKS = set().union(*CHECKS_BY_MODULE.values())
#: the served run in two halves of the suite's modules: each ~15 s of plugin
#: starts (one per check), which pytest-xdist can run side by side
_MODULES = tuple(CHECKS_BY_MODULE)
HALVES = [_MODULES[: len(_MODULES) // 2], _MODULES[len(_MODULES) // 2 :]]
#: the bridge's verdicts in-process on the real kernel: it has local data scope
IN_PROCESS_SKIPS = {"test_event_notify_accepts_every_event_type", "test_decode_table_entry_returns_id_and_strings"}
#: a plugin process keeps its own state across a controller restart: that check skips for it
PLUGIN_PROCESS_SKIPS = {"test_restart_rebuilds_the_driver_exactly"}


def verdict_table(skipped: set[str], checks: set[str] = CHECKS) -> dict[str, str]:
    """Every check of ``checks`` passed, but those in ``skipped``. The bridge's
    in-process run on the real kernel is held to ``verdict_table(IN_PROCESS_SKIPS)``
    by tests/linux/test_conformance_builtins.py (its bridge-linux case)."""
    return {check: "skipped" if check in skipped else "passed" for check in checks}


@pytest.mark.parametrize("half", HALVES, ids=["first-half", "second-half"])
def test_builtin_bridge_in_its_own_process_has_the_in_process_verdicts(
    pytester: pytest.Pytester, half: tuple[str, ...]
) -> None:
    command = [sys.executable, "-m", "netsim.plugin", "serve", "--builtin", "bridge", "--kernel", "linux"]
    command += ["--socket", "/run/docker/plugins/xbridge.sock"]
    target = ("--netsim-plugin-cmd", shlex.join(command), "--netsim-plugin-name", "xbridge")
    served = _verdicts(pytester, *target, modules=half)
    checks = set().union(*(CHECKS_BY_MODULE[module] for module in half))
    assert served == verdict_table(IN_PROCESS_SKIPS | PLUGIN_PROCESS_SKIPS, checks)
