"""The API reference and the guides build with Sphinx, warnings as errors
(``-W -n``: every cross-reference resolves, every conformance check is listed).
Sphinx and MyST come with the ``test`` extra; docs/conf.py says why Sphinx."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

sphinx_build = pytest.importorskip("sphinx.cmd.build", reason="pip install -e '.[docs]' (the test extra has it)")

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html")
    doctrees = tmp_path_factory.mktemp("doctrees")
    status = sphinx_build.build_main(
        ["-W", "--keep-going", "-n", "-q", "-b", "html", "-d", str(doctrees), str(DOCS), str(out)]
    )
    assert status == 0, "sphinx-build reported warnings or errors (run: sphinx-build -W -n docs docs/_build/html)"
    return out


def test_the_reference_covers_what_a_driver_author_touches(built: Path) -> None:
    pages = {
        "api/driverapi.html": ["netsim.driverapi.Driver", "netsim.driverapi.JoinInfo", "netsim.driverapi.CONNECTED"],
        "api/kernel.html": ["netsim.kernel.base.Kernel.add_veth", "netsim.kernel.base.Filter", "ip_forward"],
        "api/conformance.html": ["netsim.conformance.harness.DriverUnderTest", "ipv4_subnets", "netsim_kernel_factory"],
        "api/controller.html": ["netsim.controller.sandbox.plug_interface"],
        "api/host.html": ["netsim.host.Host"],
    }
    for page, needles in pages.items():
        html = (built / page).read_text()
        for needle in needles:
            assert needle in html, f"{page} does not document {needle}"


def test_every_conformance_check_is_listed(built: Path) -> None:
    import netsim.conformance

    suite = Path(netsim.conformance.__file__).parent
    checks = {
        match
        for module in suite.glob("test_*.py")
        for match in re.findall(r"^def (test_\w+)", module.read_text(), re.M)
    }
    html = (built / "checks.html").read_text()
    missing = sorted(check for check in checks if check not in html)
    assert checks and not missing, f"checks missing from docs/checks.rst's table: {missing}"


def test_the_guide_links_into_the_reference(built: Path) -> None:
    html = (built / "driver-authors.html").read_text()
    for target in ("api/kernel.html", "api/driverapi.html", "checks.html", "api/conformance.html"):
        assert f'href="{target}' in html, f"driver-authors.md has no working link to {target}"
