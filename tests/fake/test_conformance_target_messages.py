"""The conformance suite's target option: a bad one is one usage error (exit
4, naming what is known), and ``module:attr`` tests exactly what it names
even when an installed entry point registers a driver of the same name."""

from __future__ import annotations

from pathlib import Path

import pytest
from driver_projects import explain, install_for_subprocess, run_pytest, summary

from netsim.cli.new_driver import render


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("brige", "no such driver (known: bridge"),
        ("plugin:nope", "plugin: serves a built-in driver"),
        ("no_such_module:Driver", "cannot import 'no_such_module'"),
    ],
)
def test_a_bad_target_is_one_usage_error(tmp_path: Path, target: str, says: str) -> None:
    result = run_pytest(tmp_path, tmp_path, "--pyargs", "netsim.conformance", f"--netsim-driver={target}")
    assert result.returncode == 4, explain(result)
    output = result.stdout + result.stderr
    assert says in output, explain(result)
    assert "error" not in summary(result), explain(result)  # no per-check setup errors


def test_module_attr_target_beside_its_own_entry_point(tmp_path: Path) -> None:
    project = tmp_path / "routed-net"
    render("routed-net", project)
    install_for_subprocess(project, tmp_path / "site")  # entry point "routed-net" installed too
    result = run_pytest(
        project,
        tmp_path / "site",
        "--pyargs",
        "netsim.conformance",
        "--netsim-driver=routed_net_driver:init",
        "-k",
        "network or endpoint",
    )
    counts = summary(result)
    assert result.returncode == 0 and counts.get("passed", 0) >= 8, explain(result)


def test_a_leak_is_named_item_by_item(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert(Path(__file__).parent)
    result = pytester.runpytest_inprocess(
        "--pyargs",
        "netsim.conformance.test_network",
        "--netsim-driver=faulty_drivers:LeakyDeleteNetwork",
        "-k",
        "test_create_then_delete_network",
        "-p",
        "no:cacheprovider",
    )
    text = "\n".join(result.outlines)
    assert "left behind in netsim-" in text, text[-3000:]
    assert "before={" not in text  # no whole-snapshot dump


def test_a_wrong_exception_says_what_was_expected(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert(Path(__file__).parent)
    pytester.syspathinsert()
    pytester.makepyfile(
        keyerror_driver="""
from faulty_drivers import Wrapped

class RawKeyError(Wrapped):
    def delete_network(self, nid):
        if nid not in self.inner.networks:
            raise KeyError(nid[:4])
        super().delete_network(nid)
"""
    )
    result = pytester.runpytest_inprocess(
        "--pyargs",
        "netsim.conformance.test_network",
        "--netsim-driver=keyerror_driver:RawKeyError",
        "-k",
        "unknown",
        "-p",
        "no:cacheprovider",
    )
    text = "\n".join(result.outlines)
    expected = "expected NotFoundError or PluginReplyError from delete_network of an unknown network, got KeyError"
    assert expected in text, text[-3000:]
