"""On the real kernel: the `netsim new-driver` project passes its real-kernel
tests (the whole conformance suite through its entry point, the scenario) and
the guide's sample driver passes every check. The fake-kernel half and the
helpers' reasoning (no pip install: PYTHONPATH and a dist-info) are in
tests/fake/test_new_driver_template.py and tests/fake/driver_projects.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from netsim.cli.new_driver import render

pytestmark = pytest.mark.linux


def _helpers() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "fake" / "driver_projects.py"
    spec = importlib.util.spec_from_file_location("netsim_test_driver_projects", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_project_passes_its_tests_on_the_real_kernel(tmp_path: Path) -> None:
    helpers = _helpers()
    project = tmp_path / "ptp"
    render("ptp", project)
    helpers.install_for_subprocess(project, tmp_path / "site")
    # NETSIM_REQUIRE_LINUX passes through: a skip in there fails the run.
    result = helpers.run_pytest(project, tmp_path / "site", "-m", "linux", "-q")
    # the conformance suite on the real kernel and the scenario on the real kernel
    assert result.returncode == 0 and helpers.summary(result).get("passed") == 2, helpers.explain(result)


def test_the_guides_sample_driver_passes_every_check_on_the_real_kernel(tmp_path: Path) -> None:
    helpers = _helpers()
    project = tmp_path / "guide"
    helpers.extract_guide_sample(project)
    helpers.install_for_subprocess(project, tmp_path / "site")
    result = helpers.run_pytest(
        project, tmp_path / "site", "--pyargs", "netsim.conformance", "--netsim-driver=veth", "--netsim-kernel=linux"
    )
    counts = helpers.summary(result)
    assert result.returncode == 0 and counts.get("passed", 0) >= 26, helpers.explain(result)
    # table events (global scope) and the published-port check (the sample publishes none)
    assert counts.get("skipped", 0) <= 3, helpers.explain(result)
