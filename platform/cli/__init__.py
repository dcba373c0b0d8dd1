"""The `olist-bi` command line: the commands (commands.py; each BI tool brings its own group,
bi/<tool>/commands.py) and the one-line errors (errors.py). How they print: runtime/output.py."""

from olist_bi.cli.commands import main

__all__ = ["main"]
