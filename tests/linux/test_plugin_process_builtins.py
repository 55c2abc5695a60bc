"""The built-in bridge served by ``netsim plugin serve --builtin bridge
--kernel linux`` as a separate program, launched inside each check's host
(it borrows the host's namespace from NETSIM_PLUGIN_HOST), gives the
conformance suite the same verdicts as the bridge driver in-process."""

from __future__ import annotations

import shlex
import sys
import xml.etree.ElementTree as ET

import pytest

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


def test_builtin_bridge_in_its_own_process_has_the_in_process_verdicts(pytester: pytest.Pytester) -> None:
    in_process = _verdicts(pytester, "--netsim-driver=bridge")
    command = [sys.executable, "-m", "netsim.plugin", "serve", "--builtin", "bridge", "--kernel", "linux"]
    command += ["--socket", "/run/docker/plugins/xbridge.sock"]
    served = _verdicts(pytester, "--netsim-plugin-cmd", shlex.join(command), "--netsim-plugin-name", "xbridge")
    assert len(in_process) == 33
    # A plugin process keeps its own state across a controller restart: that check skips for it.
    assert served == {**in_process, "test_restart_rebuilds_the_driver_exactly": "skipped"}
    assert "failure" not in served.values() and "error" not in served.values()
