"""Sample plugins for the conformance suite's own tests and for plugin authors.

``stdlib_bridge.py`` is a Docker network + IPAM plugin written with the
standard library only (no netsim import); run it by path::

    pytest --pyargs netsim.conformance --netsim-kernel=linux \\
        --netsim-plugin-cmd "python3 $(python3 -c 'import netsim.conformance.samples as s; print(s.STDLIB_BRIDGE)')" \\
        --netsim-plugin-name sbridge
"""

from __future__ import annotations

from pathlib import Path

#: Path of the standard-library sample plugin program.
STDLIB_BRIDGE = Path(__file__).with_name("stdlib_bridge.py")
