"""``python -m netsim.plugin serve MODULE:CLASS --socket PATH``."""

from __future__ import annotations

from netsim.plugin.cli import main

raise SystemExit(main())
