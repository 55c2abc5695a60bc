"""Every built-in driver passes the conformance suite on both kernels, called
directly and served as a Docker plugin through the remote driver."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from test_plugin_process_builtins import CHECKS, IN_PROCESS_SKIPS, verdict_table

BUILTINS = ["null", "host", "bridge", "macvlan", "overlay"]
KERNELS = [pytest.param("fake", id="fake"), pytest.param("linux", id="linux", marks=pytest.mark.linux)]


def _run_suite(pytester: pytest.Pytester, spec: str, kernel: str) -> dict[str, str]:
    """Run the suite; returns {check: passed / skipped / failure / error}."""
    report = pytester.path / "report.xml"
    result = pytester.runpytest_inprocess(
        "--pyargs",
        "netsim.conformance",
        f"--netsim-driver={spec}",
        f"--netsim-kernel={kernel}",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={report}",
    )
    outcomes = result.parseoutcomes()
    failures = [line for line in result.outlines if line.startswith(("FAILED", "ERROR"))]
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, "\n".join(failures)
    assert outcomes.get("passed", 0) >= 20, f"too few checks ran: {outcomes}"
    assert any("netsim conformance:" in line for line in result.outlines), "no per-area summary printed"
    verdicts = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        found = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        verdicts[case.get("name", "")] = found[0] if found else "passed"
    return verdicts


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("driver", BUILTINS)
def test_builtin_driver_conforms(pytester: pytest.Pytester, driver: str, kernel: str) -> None:
    verdicts = _run_suite(pytester, driver, kernel)
    if (driver, kernel) == ("bridge", "linux"):
        # the table the bridge served by its own process must give too (test_plugin_process_builtins)
        assert len(CHECKS) == 33
        assert verdicts == verdict_table(IN_PROCESS_SKIPS)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("driver", BUILTINS)
def test_builtin_driver_conforms_as_a_plugin(pytester: pytest.Pytester, driver: str, kernel: str) -> None:
    _run_suite(pytester, f"plugin:{driver}", kernel)
