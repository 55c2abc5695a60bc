"""Plugin programs started by netsim inside a simulated host (real kernel).

The standard-library sample plugin (no netsim import, its own HTTP server,
``ip``/``nft`` for its links and rules) passes the whole conformance suite
on the real kernel, launched by ``--netsim-plugin-cmd``; on the fake kernel
the checks that need it to change the kernel skip with the exact reason.
The launcher's own promises are checked one by one: the plugin's links land
in the host namespace, it sees per-run plugin directories while the root
mount namespace is untouched, its whole process group is stopped, failures
quote its log.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
from test_plugin_process_builtins import CHECKS_BY_MODULE, HALVES

from drivers.remote import RemoteDriver
from netsim.driverapi import IPAMData, NetworkInfo
from netsim.errors import PluginUnavailableError
from netsim.kernel.base import Kernel
from netsim.plugin.launcher import launch_plugin
from netsim.safety import NETNS_DIR

pytestmark = pytest.mark.linux

SAMPLE = Path(__file__).resolve().parents[2] / "netsim" / "conformance" / "samples" / "stdlib_bridge.py"
PLUGIN_CMD = f"{sys.executable} {SAMPLE}"
OUT_OF_PROCESS_REASON = "needs --netsim-kernel=linux: the plugin runs in its own process"


def _mounts() -> list[str]:
    """The root mount namespace's mounts (findmnt), but namespace files:
    other runs on this machine add and remove those meanwhile."""
    listing = subprocess.run(["findmnt", "-rn", "-o", "TARGET,SOURCE,FSTYPE"], capture_output=True, text=True)
    return [line for line in listing.stdout.splitlines() if not line.startswith(f"{NETNS_DIR}/")]


#: The suite runs below each take ~15-25 s under load (a plugin start per check):
#: each goes in two halves of the suite's modules, which pytest-xdist runs side by side.
BY_HALVES = pytest.mark.parametrize("half", HALVES, ids=["first-half", "second-half"])


def _checks(half: tuple[str, ...]) -> set[str]:
    return set().union(*(CHECKS_BY_MODULE[module] for module in half))


def _suite(pytester: pytest.Pytester, kernel: str, half: tuple[str, ...], *extra: str) -> dict[str, tuple[str, str]]:
    """Run the conformance checks of ``half``; returns {check: (outcome, skip/failure message)}."""
    report = pytester.path / "report.xml"
    result = pytester.runpytest_inprocess(
        "--pyargs",
        *(f"netsim.conformance.{module}" for module in half),
        f"--netsim-kernel={kernel}",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={report}",
        *extra,
    )
    assert any("netsim conformance:" in line for line in result.outlines), "\n".join(result.outlines[-30:])
    verdicts: dict[str, tuple[str, str]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome, message = child.tag, child.get("message", "")
        verdicts[case.get("name", "")] = (outcome, message)
    return verdicts


# the table-event checks, which are for global-scope drivers (the sample is local), and
# the restart check (a plugin keeps its own state: nothing is replayed to it)
LOCAL_PLUGIN_SKIPS = {
    "test_event_notify_accepts_every_event_type",
    "test_decode_table_entry_returns_id_and_strings",
    "test_restart_rebuilds_the_driver_exactly",
}
#: on the fake kernel, the checks that need the plugin to change the kernel
OUT_OF_PROCESS_SKIPS = {
    "test_join_interface_names_are_valid",
    "test_disconnect_undoes_connect",
    "test_program_then_revoke_restores_the_kernel",
    "test_revoke_is_safe_to_repeat",
    "test_endpoints_of_one_network_reach_each_other",
    "test_separate_networks_do_not_reach_each_other",
    "test_ipv6_endpoint_on_a_dual_stack_network",
    "test_published_port_is_reachable_from_outside",
}


@BY_HALVES
def test_stdlib_plugin_passes_the_whole_suite_on_the_real_kernel(
    pytester: pytest.Pytester, half: tuple[str, ...]
) -> None:
    before = _mounts()
    verdicts = _suite(pytester, "linux", half, "--netsim-plugin-cmd", PLUGIN_CMD, "--netsim-plugin-name", "sbridge")
    failed = {name: v for name, v in verdicts.items() if v[0] in ("failure", "error")}
    assert not failed, failed
    assert set(verdicts) == _checks(half)
    skipped = {name for name, v in verdicts.items() if v[0] == "skipped"}
    # and the published-port check (the sample publishes no ports: no port map in its oper info)
    assert skipped == (LOCAL_PLUGIN_SKIPS | {"test_published_port_is_reachable_from_outside"}) & _checks(half)
    assert _mounts() == before, "the root mount namespace changed"


@BY_HALVES
def test_on_the_fake_kernel_kernel_effect_checks_skip_with_the_reason(
    pytester: pytest.Pytester, half: tuple[str, ...]
) -> None:
    verdicts = _suite(pytester, "fake", half, "--netsim-plugin-cmd", PLUGIN_CMD, "--netsim-plugin-name", "sbridge")
    assert not {name: v for name, v in verdicts.items() if v[0] in ("failure", "error")}
    assert set(verdicts) == _checks(half)
    reasoned = {name for name, (outcome, message) in verdicts.items() if OUT_OF_PROCESS_REASON in message}
    assert reasoned == OUT_OF_PROCESS_SKIPS & _checks(half)
    passed = {name for name, (outcome, _) in verdicts.items() if outcome == "passed"}
    assert passed == _checks(half) - OUT_OF_PROCESS_SKIPS - LOCAL_PLUGIN_SKIPS


def _host(netsim_kernel_factory: Callable[[str], Kernel]) -> tuple[Kernel, str, str]:
    kernel = netsim_kernel_factory("linux")
    namespace = kernel.prefix + "h1"
    kernel.add_namespace(namespace)
    kernel.set_link_up(namespace, "lo")  # as a controller's host setup does
    return kernel, namespace, str(NETNS_DIR / namespace)


def test_the_plugins_links_land_in_the_host_namespace(netsim_kernel_factory: Callable[[str], Kernel]) -> None:
    kernel, namespace, netns = _host(netsim_kernel_factory)
    before = _mounts()
    with launch_plugin(PLUGIN_CMD, "sbridge", netns=netns) as plugin:
        assert Path(plugin.address.path).parent == plugin.run_dir  # /run/docker/plugins inside = run_dir here
        assert not Path("/run/docker/plugins/sbridge.sock").exists()
        driver = RemoteDriver.connect(plugin.address, name="sbridge")
        try:
            data = [IPAMData("x", ipaddress.ip_network("10.9.0.0/24"), ipaddress.ip_interface("10.9.0.1/24"))]
            driver.create_network("n" * 64, {}, NetworkInfo(), data, [])
            assert "sbnnnnnnnnnnnn" in {link.name for link in kernel.links(namespace)}
            driver.delete_network("n" * 64)
            assert "sbnnnnnnnnnnnn" not in {link.name for link in kernel.links(namespace)}
        finally:
            driver.close()
        assert _mounts() == before, "launching changed the root mount namespace"
    assert not plugin.workdir.exists(), "per-run plugin directories left behind"
    assert _mounts() == before


def test_tcp_spec_plugin_is_reached_inside_the_host(netsim_kernel_factory: Callable[[str], Kernel]) -> None:
    _, _, netns = _host(netsim_kernel_factory)
    with launch_plugin(f"{PLUGIN_CMD} --tcp", "sbridge", netns=netns) as plugin:
        assert plugin.address.scheme == "tcp" and plugin.address.netns == netns
        driver = RemoteDriver.connect(plugin.address, name="sbridge")
        assert driver.capability.data_scope == "local"
        driver.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stop_ends_the_whole_process_group_even_if_sigterm_is_ignored(
    netsim_kernel_factory: Callable[[str], Kernel], tmp_path: Path
) -> None:
    _, _, netns = _host(netsim_kernel_factory)
    # a plugin that ignores SIGTERM and leaves a child behind in its group
    script = tmp_path / "stubborn.py"
    script.write_text(
        "import os, signal, socket, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen(['sleep', '300'])\n"
        "print('child', child.pid, flush=True)\n"
        "s = socket.socket(socket.AF_UNIX); s.bind('/run/docker/plugins/stub.sock'); s.listen()\n"
        "time.sleep(300)\n"
    )
    plugin = launch_plugin([sys.executable, str(script)], "stub", netns=netns, grace=0.3)
    deadline = time.monotonic() + 5
    while "child" not in plugin.log_tail() and time.monotonic() < deadline:
        time.sleep(0.01)
    child = int(plugin.log_tail().split("child", 1)[1].split()[0])
    assert _alive(child)
    started = time.monotonic()
    status = plugin.stop()
    assert status == -9, "SIGTERM was ignored: SIGKILL after the grace period"
    assert time.monotonic() - started < 3
    deadline = time.monotonic() + 2
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.01)  # killed; reaped by init once its parent is gone
    assert not _alive(child) or Path(f"/proc/{child}/stat").read_text().split()[2] == "Z"


def test_a_plugin_that_exits_is_reported_with_its_log(netsim_kernel_factory: Callable[[str], Kernel]) -> None:
    _, _, netns = _host(netsim_kernel_factory)
    with pytest.raises(PluginUnavailableError) as failed:
        launch_plugin([sys.executable, "-c", "import sys; sys.exit('no config file, giving up')"], "x", netns=netns)
    assert "exited with status 1" in str(failed.value) and "no config file, giving up" in str(failed.value)


def test_a_plugin_that_never_serves_times_out_with_its_log(netsim_kernel_factory: Callable[[str], Kernel]) -> None:
    _, _, netns = _host(netsim_kernel_factory)
    command = [sys.executable, "-c", "print('waiting for godot', flush=True); import time; time.sleep(60)"]
    started = time.monotonic()
    with pytest.raises(PluginUnavailableError) as failed:
        launch_plugin(command, "late", netns=netns, timeout=0.5, grace=0.2)
    assert time.monotonic() - started < 3
    assert "within the deadline" in str(failed.value) and "waiting for godot" in str(failed.value)


def test_a_plugin_does_not_outlive_a_killed_netsim(
    netsim_kernel_factory: Callable[[str], Kernel], tmp_path: Path
) -> None:
    _, _, netns = _host(netsim_kernel_factory)
    runner = tmp_path / "runner.py"
    runner.write_text(
        "import sys, time\n"
        "from netsim.plugin.launcher import launch_plugin\n"
        'serve = "import socket, time; s = socket.socket(socket.AF_UNIX); '
        "s.bind('/run/docker/plugins/orphan.sock'); s.listen(); time.sleep(300)\"\n"
        "plugin = launch_plugin([sys.executable, '-c', serve], 'orphan', netns=sys.argv[1])\n"
        "print(plugin.pid, plugin.workdir, flush=True)\n"
        "time.sleep(300)\n"
    )
    netsim = subprocess.Popen([sys.executable, str(runner), netns], stdout=subprocess.PIPE, text=True)
    try:
        assert netsim.stdout is not None
        pid_text, workdir = netsim.stdout.readline().split()
        pid = int(pid_text)
        assert _alive(pid)
    finally:
        netsim.kill()  # SIGKILL: no teardown runs in the launching process
        netsim.wait()
    deadline = time.monotonic() + 3
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    shutil.rmtree(workdir, ignore_errors=True)  # the killed process could not remove it
    assert not _alive(pid), "the plugin outlived the netsim process that launched it"


def test_without_root_the_plugin_gets_a_user_namespace() -> None:
    """The fake kernel's path as an ordinary user: a private network namespace
    and the per-run plugin directories, through a user namespace."""
    from netsim.plugin.launcher import ENTER_SCRIPT

    tmp_path = Path(tempfile.mkdtemp(prefix="netsim-plugin-nobody-"))  # pytest's tmp_path is root-only
    try:
        _run_as_nobody(ENTER_SCRIPT, tmp_path)
    finally:
        shutil.rmtree(tmp_path)


def _run_as_nobody(enter_script: Path, tmp_path: Path) -> None:
    run, etc = tmp_path / "run", tmp_path / "etc"
    for directory in (tmp_path, run, etc):
        directory.mkdir(exist_ok=True)
        directory.chmod(0o777)
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")  # nobody cannot run root's pyenv
    assert python is not None, "a system python3 is needed to run as nobody"
    enter = [python, "-I", "-S", str(enter_script), "--new-netns", f"--bind=/run/docker/plugins={run}"]
    enter += [f"--bind=/etc/docker/plugins={etc}", "--shadow-dir", str(tmp_path / "shadow")]
    plugin = ["sh", "-c", "touch /run/docker/plugins/p.sock && ip -o link show | wc -l"]
    done = subprocess.run(["runuser", "-u", "nobody", "--", *enter, "--", *plugin], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1", "only loopback in the private network namespace"
    assert (run / "p.sock").exists() and not Path("/run/docker").exists()
