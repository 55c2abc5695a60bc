"""The built-in bridge served by ``netsim plugin serve --builtin bridge
--kernel linux`` as a separate program, launched inside each check's host
(it borrows the host's namespace from NETSIM_PLUGIN_HOST), gives the
conformance suite the same verdicts as the bridge driver in-process: both
runs must give one verdict table, each in its own test, so that pytest-xdist
runs them side by side (~10 s and ~30 s) rather than one after the other."""

from __future__ import annotations

import re
import shlex
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import netsim.conformance

pytestmark = pytest.mark.linux


def _verdicts(pytester: pytest.Pytester, *target: str) -> dict[str, str]:
    report = pytester.path / f"report-{len(list(pytester.path.glob('report-*')))}.xml"
    pytester.runpytest_inprocess(
        "--pyargs", "netsim.conformance", "--netsim-kernel=linux", "-q", "-p", "no:cacheprovider",
        f"--junitxml={report}", *target,
    )  # fmt: skip
    verdicts = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        outcomes = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        verdicts[case.get("name", "")] = outcomes[0] if outcomes else "passed"
    return verdicts


#: every check of the conformance suite, by name (a verdict table covers exactly these)
CHECKS = {
    name
    for module in Path(netsim.conformance.__file__).parent.glob("test_*.py")
    for name in re.findall(r"^def (test_\w+)", module.read_text(), re.M)
}
#: the bridge's verdicts in-process on the real kernel: it has local data scope
IN_PROCESS_SKIPS = {"test_event_notify_accepts_every_event_type", "test_decode_table_entry_returns_id_and_strings"}
#: a plugin process keeps its own state across a controller restart: that check skips for it
PLUGIN_PROCESS_SKIPS = {"test_restart_rebuilds_the_driver_exactly"}


def _as_table(skipped: set[str]) -> dict[str, str]:
    return {check: "skipped" if check in skipped else "passed" for check in CHECKS}


def test_builtin_bridge_in_process_has_the_table_verdicts(pytester: pytest.Pytester) -> None:
    in_process = _verdicts(pytester, "--netsim-driver=bridge")
    assert len(CHECKS) == 33
    assert in_process == _as_table(IN_PROCESS_SKIPS)


def test_builtin_bridge_in_its_own_process_has_the_in_process_verdicts(pytester: pytest.Pytester) -> None:
    command = [sys.executable, "-m", "netsim.plugin", "serve", "--builtin", "bridge", "--kernel", "linux"]
    command += ["--socket", "/run/docker/plugins/xbridge.sock"]
    served = _verdicts(pytester, "--netsim-plugin-cmd", shlex.join(command), "--netsim-plugin-name", "xbridge")
    assert served == _as_table(IN_PROCESS_SKIPS | PLUGIN_PROCESS_SKIPS)
