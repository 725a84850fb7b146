"""`python -m dcwatch.cli`: the `dcwatch` command (how the local runtime starts the site agents)."""

import sys

from dcwatch.cli.arguments import main

sys.exit(main())
