"""The `dcwatch` command line: the parser and `main` in `arguments`, the commands by concern beside it
(config, local, recovery, controls, agent)."""

from dcwatch.cli.arguments import main, parser

__all__ = ["main", "parser"]
