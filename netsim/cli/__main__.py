"""``python -m netsim.cli``: the same as the ``netsim`` console script."""

import sys

from netsim.cli import main

sys.exit(main())
