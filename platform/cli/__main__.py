"""`python -m olist_bi.cli`: the `olist-bi` command."""

from olist_bi.cli.commands import main

main()
