"""Sphinx configuration: the driver author's API reference and the guides.

Why Sphinx with autodoc (and not MkDocs with mkdocstrings): netsim's
docstrings are already reStructuredText with Sphinx roles (``:class:``,
``:meth:``, ``:data:``), so autodoc renders them as written; autodoc imports
the modules, so what it documents is what Python sees (dataclass fields,
enum members, ``__all__``); and ``-W -n`` turns every broken cross-reference
into a build error, which is how CI keeps the reference from rotting. The
Markdown guides are read by MyST, so they stay readable on a forge too.

Build: ``sphinx-build -W -n docs docs/_build/html`` (tests/unit/test_docs_build.py
runs it with warnings as errors).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))

project = "netsim"
author = "netsim maintainers"
copyright = "netsim maintainers"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "myst_parser",
    "netsim_checks",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "README.md"]
# Relative links between the Markdown guides ([x](api/kernel.rst)) become document references.
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_preserve_defaults = True

# Every cross-reference must resolve, except into libraries with no inventory
# here (the build is offline: no intersphinx).
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(collections\.abc|typing|ipaddress|contextlib|enum|abc|argparse|pathlib|dataclasses)\..*"),
    (r"py:.*", r"(hypothesis|pytest|_pytest|scapy|pyroute2)(\..*)?"),
    (r"py:.*", r"(Mapping|Sequence|Iterator|Callable|Any|Literal|Protocol|ABC|IntEnum|Exception|ValueError)"),
    (r"py:.*", r"(st\.SearchStrategy|SearchStrategy|IPv4Network|IPv6Network|IPv4Address|IPv6Address)"),
    (r"py:.*", r"(IPv4Interface|IPv6Interface|LookupError|NotImplementedError|OSError)"),
    (r"py:.*", r"(str|int|bool|bytes|float|dict|list|tuple|set|frozenset|object|None|type)"),
    # Fragments of generic hints autodoc cannot split ('dict[str, X]' read from a string annotation).
    (r"py:class", r"'?(dict|list|tuple|set)\[.*"),
    # Documented elsewhere (their own guides), not part of a driver's reference.
    (r"py:.*", r"netsim\.(plugin|store|cluster|scenario|benchcmp)(\..*)?"),
    (r"py:class", r"(ConformanceTarget|Undo|KVStore|netsim\.undo\.Undo)"),
    (r"py:class", r"'?Mapping\[.*"),
    (r"py:class", r"netsim\.(controller\.(recovery|config)|registry)\..*"),
]

html_theme = "alabaster"
html_title = "netsim"
html_static_path: list[str] = []
