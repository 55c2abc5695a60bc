"""Reading a scenario file safely: bytes → text → YAML data, or a ScenarioError.

A scenario file is untrusted input (CI pipelines run whatever a pull request
carries), so reading it must neither block nor exhaust memory nor raise
anything but a one-line error naming the file:

* only regular files are read (a FIFO named ``x.yaml`` would block forever, a
  symlink to ``/dev/zero`` would read until memory runs out), and at most
  :data:`MAX_SCENARIO_BYTES`;
* the text must be UTF-8 (a UTF-8 byte-order mark is allowed); anything else
  is refused with the line and byte where decoding failed;
* a YAML mapping may not repeat a key (PyYAML silently keeps the last one);
* an integer over 1,024 bits is a YAML error, not a traceback from deep
  inside PyYAML (decimal past Python's int() limit) or later (hex, when
  printed);
* nesting deeper than 200 levels is refused before libyaml's recursive
  composer overflows the C stack.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from netsim.errors import ScenarioError

#: far above any real scenario (10,000 containers and 5,000 networks take ~1 MB)
MAX_SCENARIO_BYTES = 32 * 1024 * 1024
#: nesting deeper than this is refused before composing: libyaml's composer
#: recurses in C and overflows the stack (a segfault) near 30,000 levels;
#: a scenario is about six deep
MAX_NESTING = 200
#: integers beyond this are refused (ports and ids are far smaller; str() of a huge one raises)
MAX_INT_BITS = 1024

_BASE_LOADER: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_BASE_LOADER):  # type: ignore[misc]
    """The safe loader (libyaml's C parser when present), refusing duplicate
    keys and turning over-long integers into a YAML error with a position."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # '<<: *base' may override keys: that is what merging means
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base constructor names it
                break
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first at line {first.start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node
        result: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return result

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            value: int = super().construct_yaml_int(node)
        except ValueError:  # int() refuses more than sys.get_int_max_str_digits() digits
            value = 1 << MAX_INT_BITS
        if value.bit_length() > MAX_INT_BITS:  # hex, octal and binary have no such limit: str() would fail later
            raise yaml.constructor.ConstructorError(
                None, None, f"integer too long ({len(str(node.value))} characters)", node.start_mark
            )
        return value


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _StrictLoader.construct_yaml_int)
_StrictLoader.add_constructor("tag:yaml.org,2002:map", _StrictLoader.construct_yaml_map)


def read_scenario_bytes(path: str | Path, limit: int = MAX_SCENARIO_BYTES) -> bytes:
    """The file's bytes, if it is a regular file of at most ``limit`` bytes.

    Opened non-blocking so that opening a FIFO returns at once; the type is
    checked on the open descriptor (no window between check and read).
    """
    file = str(path)
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ScenarioError(f"cannot read file: {exc.strerror or exc}", file=file) from exc
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ScenarioError("cannot read file: is a directory", file=file)
        if not stat.S_ISREG(info.st_mode):
            raise ScenarioError(f"cannot read file: not a regular file ({_kind(info.st_mode)})", file=file)
        if info.st_size > limit:
            raise ScenarioError(f"file too large: {info.st_size} bytes (at most {limit})", file=file)
        chunks: list[bytes] = []
        total = 0
        while total <= limit:  # the size may have grown since fstat: never read past the cap
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise ScenarioError(f"file too large: more than {limit} bytes", file=file)
        return b"".join(chunks)
    except OSError as exc:
        reason = "is a directory" if exc.errno == errno.EISDIR else (exc.strerror or str(exc))
        raise ScenarioError(f"cannot read file: {reason}", file=file) from exc
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a file"


def decode_scenario(data: bytes, file: str) -> str:
    """UTF-8 text (an optional UTF-8 BOM is dropped); else the line and byte that failed.

    >>> decode_scenario(b"name: x\\n", "f.yaml")
    'name: x\\n'
    >>> decode_scenario(b"a: 1\\nb: \\xe9t\\xe9\\n", "f.yaml")
    Traceback (most recent call last):
    ...
    netsim.errors.ScenarioError: f.yaml: not UTF-8 text at line 2 (byte 0xe9): save the file as UTF-8
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ScenarioError("the file is UTF-16 or UTF-32 text: save it as UTF-8", file=file)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ScenarioError(
            f"not UTF-8 text at line {line} (byte 0x{data[exc.start]:02x}): save the file as UTF-8", file=file
        ) from exc


def _nesting_bound(text: str) -> int:
    """An upper bound on the collection nesting depth, in C-speed passes: every
    collection starts with one of these characters (block mapping key ':',
    block sequence '-', explicit key '?', flow '[' and '{')."""
    return sum(text.count(c) for c in ":-?[{")


def _check_nesting(text: str, file: str) -> None:
    """Refuse nesting deeper than :data:`MAX_NESTING` from the event stream
    (flat, no recursion); skipped when the cheap bound already rules it out."""
    if _nesting_bound(text) <= MAX_NESTING:
        return
    depth = 0
    starts = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
    ends = (yaml.SequenceEndEvent, yaml.MappingEndEvent)
    try:
        for event in yaml.parse(text, Loader=_BASE_LOADER):
            if isinstance(event, starts):
                depth += 1
                if depth > MAX_NESTING:
                    line = event.start_mark.line + 1 if event.start_mark is not None else 0
                    raise ScenarioError(
                        f"invalid YAML at line {line}: nested deeper than {MAX_NESTING} levels", file=file
                    )
            elif isinstance(event, ends):
                depth -= 1
    except yaml.YAMLError as exc:
        # Newer libyaml (PyYAML 6.0.4) stops at its own depth limit first: same refusal, same words.
        if "nesting depth" not in str(exc):
            raise
        where = getattr(exc, "problem_mark", None)
        line = where.line + 1 if where is not None else 0
        raise ScenarioError(f"invalid YAML at line {line}: nested deeper than {MAX_NESTING} levels", file=file) from exc


def parse_yaml(text: str, file: str) -> object:
    """YAML → Python data with the strict loader; errors say where."""
    try:
        _check_nesting(text, file)
        return yaml.load(text, Loader=_StrictLoader)  # a subclass of the safe loader
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(f"invalid YAML{line}: {problem}", file=file) from exc
    except RecursionError as exc:  # nesting deeper than the interpreter's stack
        raise ScenarioError("invalid YAML: nested too deeply", file=file) from exc


def read_scenario_data(path: str | Path) -> object:
    """A scenario file's YAML data: regular file, size cap, UTF-8, no duplicate keys."""
    file = str(path)
    return parse_yaml(decode_scenario(read_scenario_bytes(path), file), file)
