"""Every built-in driver passes the conformance suite on both kernels, called
directly and served as a Docker plugin through the remote driver."""

from __future__ import annotations

import pytest

BUILTINS = ["null", "host", "bridge", "macvlan", "overlay"]
KERNELS = [pytest.param("fake", id="fake"), pytest.param("linux", id="linux", marks=pytest.mark.linux)]


def _run_suite(pytester: pytest.Pytester, spec: str, kernel: str) -> None:
    result = pytester.runpytest_inprocess(
        "--pyargs",
        "netsim.conformance",
        f"--netsim-driver={spec}",
        f"--netsim-kernel={kernel}",
        "-q",
        "-p",
        "no:cacheprovider",
    )
    outcomes = result.parseoutcomes()
    failures = [line for line in result.outlines if line.startswith(("FAILED", "ERROR"))]
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, "\n".join(failures)
    assert outcomes.get("passed", 0) >= 20, f"too few checks ran: {outcomes}"
    assert any("netsim conformance:" in line for line in result.outlines), "no per-area summary printed"


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("driver", BUILTINS)
def test_builtin_driver_conforms(pytester: pytest.Pytester, driver: str, kernel: str) -> None:
    _run_suite(pytester, driver, kernel)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("driver", BUILTINS)
def test_builtin_driver_conforms_as_a_plugin(pytester: pytest.Pytester, driver: str, kernel: str) -> None:
    _run_suite(pytester, f"plugin:{driver}", kernel)
