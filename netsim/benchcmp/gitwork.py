"""The two trees a comparison measures: git worktrees of commits, or the working tree.

A commit is checked out once, detached, under the cache directory
(``<cache>/worktrees/<sha>``) and kept there, so a second comparison of the
same commit costs nothing. The working tree (HEAD's default) is measured in
place, uncommitted changes included. Every git call is an argument list.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from netsim.errors import InvalidParameterError, UnavailableError

#: What ``HEAD`` means when no HEAD is given: the files as they are now.
WORKING_TREE = "WORKTREE"


@dataclass(frozen=True)
class Tree:
    """One side of a comparison: where its files are and what they are."""

    label: str  # "base" or "head"
    spec: str  # what the user asked for: a commit-ish, or WORKTREE
    commit: str  # the full commit id (for the working tree: the commit it sits on)
    path: Path  # the files pytest runs in
    dirty: bool  # the working tree with uncommitted changes

    @property
    def short(self) -> str:
        return self.commit[:10] + ("+dirty" if self.dirty else "")


def git(repo: Path, *args: str, check: bool = True) -> str:
    """Run ``git -C repo ARGS``; a failure becomes an error naming the command."""
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise UnavailableError("git is not installed") from exc
    if check and done.returncode != 0:
        message = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise InvalidParameterError(f"git {' '.join(args)}: {message[0]}")
    return done.stdout.strip()


def repo_root(start: Path) -> Path:
    """The top of the git checkout containing ``start``."""
    if not start.exists():
        raise InvalidParameterError(f"{start}: no such directory")
    try:
        return Path(git(start, "rev-parse", "--show-toplevel"))
    except InvalidParameterError as exc:
        raise InvalidParameterError(f"{start} is not inside a git checkout") from exc


def resolve(repo: Path, spec: str) -> str:
    """The full commit id of ``spec`` (a sha, branch, tag, ``HEAD~3``...)."""
    done = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise InvalidParameterError(f"{spec!r} is not a commit in {repo}")
    return done.stdout.strip()


def default_base(repo: Path, head_commit: str, branch: str = "main") -> str:
    """The merge base of HEAD with ``branch`` (CI's question: what did this change do?)."""
    target = branch
    for candidate in (branch, f"origin/{branch}"):
        if (
            subprocess.run(
                ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", candidate],
                capture_output=True,
                check=False,
            ).returncode
            == 0
        ):
            target = candidate
            break
    else:
        raise InvalidParameterError(f"no branch {branch!r} to take the merge base with: name BASE explicitly")
    return git(repo, "merge-base", target, head_commit)


def is_dirty(repo: Path) -> bool:
    return bool(git(repo, "status", "--porcelain", "--untracked-files=no"))


def working_tree(repo: Path, label: str = "head") -> Tree:
    commit = resolve(repo, "HEAD")
    return Tree(label=label, spec=WORKING_TREE, commit=commit, path=repo, dirty=is_dirty(repo))


def checkout(repo: Path, spec: str, cache: Path, label: str) -> Tree:
    """A detached worktree of ``spec`` under ``cache/worktrees``, reused when present."""
    commit = resolve(repo, spec)
    # Worktrees of different repositories must not collide in a shared cache.
    where = cache / "worktrees" / f"{_repo_key(repo)}-{commit[:16]}"
    if where.exists():
        current = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if current == commit and not is_dirty(where):
            return Tree(label=label, spec=spec, commit=commit, path=where, dirty=False)
        # A half-made or modified checkout: start again rather than measure unknown files.
        git(repo, "worktree", "remove", "--force", str(where), check=False)
        shutil.rmtree(where, ignore_errors=True)
    git(repo, "worktree", "prune")
    where.parent.mkdir(parents=True, exist_ok=True)
    git(repo, "worktree", "add", "--detach", "--force", str(where), commit)
    return Tree(label=label, spec=spec, commit=commit, path=where, dirty=False)


def _repo_key(repo: Path) -> str:
    return hashlib.sha1(os.fsencode(repo.resolve())).hexdigest()[:8]


def tree_key(tree: Tree) -> str:
    """Names this tree's venv: the commit for a checkout, the path for the working tree."""
    if tree.spec == WORKING_TREE:
        return f"worktree-{_repo_key(tree.path)}"
    return tree.commit[:16]
