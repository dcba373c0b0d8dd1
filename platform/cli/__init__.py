"""The `olist-bi` command line. It parses, calls one function of the part that owns the rule,
and prints: commands.py holds the root group and the top-level commands (generate, check,
migrate, doctor, scheduler, up); one module per group (etl, semantic, audit, bi, postgres,
notebook, outbox); each BI tool brings its own group (bi/<tool>/commands.py); errors.py turns
errors into one line. How they print: runtime/output.py."""

from olist_bi.cli.commands import main

__all__ = ["main"]
