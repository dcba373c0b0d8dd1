"""The `olist-bi` command line: the commands (commands.py) and how they print (output.py)."""

from olist_bi.cli.commands import main

__all__ = ["main"]
