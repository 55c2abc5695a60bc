"""The built-in ipvlan driver passes the conformance suite on the fake kernel,
called directly and served as a Docker plugin. (On this machine kind's real
kernel it cannot: there is no ipvlan link kind; tests/linux/test_ipvlan_refusal.py.)"""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("spec", ["ipvlan", "plugin:ipvlan"])
def test_ipvlan_conforms_on_the_fake_kernel(pytester: pytest.Pytester, spec: str) -> None:
    result = pytester.runpytest_inprocess(
        "--pyargs",
        "netsim.conformance",
        f"--netsim-driver={spec}",
        "--netsim-kernel=fake",
        "-q",
        "-p",
        "no:cacheprovider",
    )
    outcomes = result.parseoutcomes()
    failures = [line for line in result.outlines if line.startswith(("FAILED", "ERROR"))]
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, "\n".join(failures)
    assert outcomes.get("passed", 0) >= 25, f"too few checks ran: {outcomes}"
