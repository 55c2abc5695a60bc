"""Enter a plugin's namespaces, then exec the plugin (run as a script, by path).

``python3 -I -S enter.py (--netns PATH | --new-netns) --bind TARGET=SOURCE ...
--shadow-dir DIR -- COMMAND ARGS...``

The launcher (:mod:`netsim.plugin.launcher`) starts this file as a fresh,
single-threaded interpreter that imports nothing of netsim (``-I -S``: fast,
and no site hooks). Doing the namespace work here instead of in a
``preexec_fn`` keeps it out of the forked copy of a threaded parent (where a
lock held by another thread could deadlock the child), and instead of
``nsenter``/``unshare``/``mount`` commands it keeps every step checked in
one place. In order:

1. the network namespace: join the simulated host's (``setns`` on its
   ``/run/netns`` file, then check by inode that this process is there), or
   make a private one (``--new-netns``: a throwaway namespace that dies with
   the plugin, used where the plugin has no simulated host to live in);
   without root, a user namespace makes the rest possible;
2. a private mount namespace whose mounts are slaves of the parent's: mounts
   made here never propagate back, so the root mount namespace's view never
   changes;
3. each ``--bind TARGET=SOURCE``: SOURCE (a per-run directory) is bind-mounted
   over TARGET (``/run/docker/plugins``, ``/etc/docker/plugins``). A TARGET
   that does not exist is made inside a *shadow* of its deepest existing
   ancestor: a tmpfs holding bind mounts of every entry of that ancestor,
   mounted over it in this namespace only, so nothing is created on the host;
4. the plugin is killed if netsim dies (``PR_SET_PDEATHSIG``; Linux sends it
   when the *thread* that started the plugin exits, so netsim launches
   plugins from threads that outlive them): a crashed run leaves no plugin
   running in a namespace ``netsim clean`` is about to remove;
5. ``execvp`` of the plugin command (an argument list, never a shell).

Any failure exits with status 125 and one line on stderr naming the step.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import os
import signal
import socket
import stat
import struct
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SLAVE = 0x80000
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
PR_SET_PDEATHSIG = 1
ENTER_FAILED = 125


class EnterError(Exception):
    """A step of entering the namespaces failed."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise EnterError(f"{what}: {os.strerror(code)} (errno {code})")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def arg(text: str | None) -> bytes | None:
        return None if text is None else os.fsencode(text)

    _check(_libc().mount(arg(source), arg(target), arg(fstype), flags, arg(data)), f"mount {source} on {target}")


def _same_inode(a: str, b: str) -> bool:
    first, second = os.stat(a), os.stat(b)
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


def enter_network(netns: str | None) -> None:
    """Join ``netns`` (a namespace file) or, when None, unshare a new one."""
    libc = _libc()
    if netns is not None:
        fd = os.open(netns, os.O_RDONLY)
        try:
            _check(libc.setns(fd, CLONE_NEWNET), f"setns into {netns}")
        finally:
            os.close(fd)
        if not _same_inode("/proc/self/ns/net", netns):
            raise EnterError(f"not inside {netns} after setns; refusing to start the plugin")
        return
    flags = CLONE_NEWNET | CLONE_NEWNS
    if os.geteuid() != 0:
        uid, gid = os.geteuid(), os.getegid()
        _check(libc.unshare(CLONE_NEWUSER | flags), "unshare user, network and mount namespaces")
        for path, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
            with open(f"/proc/self/{path}", "w", encoding="ascii") as stream:
                stream.write(text)
    else:
        _check(libc.unshare(flags), "unshare network and mount namespaces")
    # a new namespace's loopback is down; plugins listening on 127.0.0.1 need it
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", IFF_UP))


def _namespace_id(path: str) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_dev, info.st_ino


def enter_mounts(original: tuple[int, int]) -> None:
    """A private mount namespace (unless enter_network made one) with slave
    propagation; ``original`` is the mount namespace this process started in."""
    if _namespace_id("/proc/self/ns/mnt") == original:
        _check(_libc().unshare(CLONE_NEWNS), "unshare mount namespace")
    _mount(None, "/", None, MS_REC | MS_SLAVE)
    if _namespace_id("/proc/self/ns/mnt") == original:
        raise EnterError("still in the original mount namespace; refusing to mount anything")


def _deepest_existing(target: str) -> tuple[str, list[str]]:
    """(deepest existing directory above ``target``, the missing components)."""
    parts = [p for p in target.split("/") if p]
    ancestor = "/"
    for index, part in enumerate(parts):
        candidate = os.path.join(ancestor, part)
        if os.path.isdir(candidate) and not os.path.islink(candidate):
            ancestor = candidate
            continue
        if os.path.lexists(candidate):
            raise EnterError(f"{candidate} exists and is not a directory: cannot mount over {target}")
        return ancestor, parts[index:]
    return ancestor, []


def shadow(directory: str, staging: str) -> None:
    """Mount over ``directory`` a tmpfs that holds bind mounts of all its entries.

    The entries stay what they were (same files, same submounts, writable as
    before); only new names made in ``directory`` land in the tmpfs, in this
    mount namespace, and vanish with it.
    """
    if directory == "/":
        raise EnterError("refusing to shadow /")
    info = os.stat(directory)
    os.makedirs(staging, exist_ok=True)
    mode = f"mode={stat.S_IMODE(info.st_mode):o}"
    try:
        _mount("tmpfs", staging, "tmpfs", 0, f"{mode},uid={info.st_uid},gid={info.st_gid}")
    except EnterError:
        # in a user namespace the owner may be unmapped (EINVAL): keep the mode only
        _mount("tmpfs", staging, "tmpfs", 0, mode)
    for entry in os.scandir(directory):
        source, copy = entry.path, os.path.join(staging, entry.name)
        if entry.is_symlink():
            os.symlink(os.readlink(source), copy)
            continue
        if entry.is_dir(follow_symlinks=False):
            os.mkdir(copy)
        else:
            with open(copy, "w"):
                pass
        _mount(source, copy, None, MS_BIND | MS_REC)
    _mount(staging, directory, None, MS_BIND | MS_REC)


def bind_over(target: str, source: str, staging: str) -> None:
    """Bind ``source`` over ``target``, making ``target`` in a shadow if needed."""
    ancestor, missing = _deepest_existing(target)
    if missing:
        shadow(ancestor, staging)
        os.makedirs(target, mode=0o755)
    _mount(source, target, None, MS_BIND)


def die_with_parent(parent: int) -> None:
    """SIGKILL this process (and so the plugin it becomes) when netsim dies."""
    _check(_libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:  # netsim died before the death signal was armed
        raise EnterError("netsim exited while the plugin was starting")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="enter.py", description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--netns", help="network namespace file to join")
    where.add_argument("--new-netns", action="store_true", help="run in a new private network namespace")
    parser.add_argument("--bind", action="append", default=[], metavar="TARGET=SOURCE")
    parser.add_argument("--shadow-dir", required=True, help="where shadow tmpfs mounts are staged")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    parent = os.getppid()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no plugin command after --")
    try:
        original = _namespace_id("/proc/self/ns/mnt")
        enter_network(None if args.new_netns else args.netns)
        enter_mounts(original)
        for index, pair in enumerate(args.bind):
            target, sep, source = pair.partition("=")
            if not sep or not os.path.isabs(target) or not os.path.isdir(source):
                raise EnterError(f"--bind {pair!r}: expected /absolute/target=existing-directory")
            bind_over(target, source, os.path.join(args.shadow_dir, str(index)))
    except (EnterError, OSError) as exc:
        print(f"netsim plugin launcher: {exc}", file=sys.stderr, flush=True)
        return ENTER_FAILED
    try:
        die_with_parent(parent)
        os.execvp(command[0], command)
    except EnterError as exc:
        print(f"netsim plugin launcher: {exc}", file=sys.stderr, flush=True)
    except OSError as exc:
        print(f"netsim plugin launcher: cannot run {command[0]!r}: {exc}", file=sys.stderr, flush=True)
    return ENTER_FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
