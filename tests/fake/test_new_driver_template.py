"""`netsim new-driver`: the generated project passes its own tests (the whole
conformance suite through its entry point, the property test, the scenario) on
the fake kernel, and so does the guide's sample driver. The real-kernel half
is tests/linux/test_new_driver_template_linux.py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from driver_projects import explain, extract_guide_sample, install_for_subprocess, run_pytest, summary

from netsim.cli import main
from netsim.cli.new_driver import DriverNames, render


def test_generated_project_passes_its_tests_on_the_fake_kernel(tmp_path: Path) -> None:
    project = tmp_path / "ptp"
    assert main(["new-driver", "ptp", "--dir", str(project)]) == 0
    install_for_subprocess(project, tmp_path / "site")
    result = run_pytest(project, tmp_path / "site", "-m", "not linux", "-q")
    # the conformance suite (by the entry point's name), the property test, the scenario
    assert result.returncode == 0 and summary(result).get("passed") == 3, explain(result)


def test_the_generated_driver_passes_every_check_by_entry_point(tmp_path: Path) -> None:
    """The suite itself, as an author runs it once the package is installed."""
    project = tmp_path / "routed-net"
    render("routed-net", project)
    install_for_subprocess(project, tmp_path / "site")
    result = run_pytest(project, tmp_path / "site", "--pyargs", "netsim.conformance", "--netsim-driver=routed-net")
    counts = summary(result)
    assert result.returncode == 0 and counts.get("passed", 0) >= 26, explain(result)
    assert "failed" not in counts and "error" not in counts and "errors" not in counts, explain(result)
    # Only the table-event checks (for global-scope drivers) and the published-port
    # check (the template publishes no ports) skip.
    assert counts.get("skipped", 0) <= 3, explain(result)


def test_the_guides_sample_driver_passes_every_check(tmp_path: Path) -> None:
    project = tmp_path / "guide"
    written = extract_guide_sample(project)
    assert {path.relative_to(project).as_posix() for path in written} == {"mydriver/__init__.py", "pyproject.toml"}
    install_for_subprocess(project, tmp_path / "site")
    result = run_pytest(project, tmp_path / "site", "--pyargs", "netsim.conformance", "--netsim-driver=veth")
    counts = summary(result)
    assert result.returncode == 0 and counts.get("passed", 0) >= 26, explain(result)
    assert counts.get("skipped", 0) <= 3, explain(result)  # as above: it publishes no ports either


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is in the dev extra")
def test_the_generated_project_is_lint_clean(tmp_path: Path) -> None:
    """What an author starts from passes ruff with the project's own settings."""
    render("ptp", tmp_path / "ptp")
    for command in (["ruff", "check", "."], ["ruff", "format", "--check", "."]):
        result = subprocess.run(command, cwd=tmp_path / "ptp", capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_names_fill_the_template() -> None:
    names = DriverNames.from_name("my-net")
    assert (names.name, names.package, names.project) == ("my-net", "my_net_driver", "netsim-my-net")
    assert names.target_path("package/driver.py.tmpl") == "my_net_driver/driver.py"
    assert names.target_path("scenarios/NAME.yaml.tmpl") == "scenarios/my-net.yaml"


@pytest.mark.parametrize("name", ["", "Bad", "9lives", "with space", "a/b", "x" * 40])
def test_a_bad_name_is_one_usage_error(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-driver", name, "--dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid driver name" in err
    assert not (tmp_path / "out").exists()


def test_a_non_empty_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["new-driver", "ptp", "--dir", str(tmp_path)]) == 2
    assert "not an empty directory" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
