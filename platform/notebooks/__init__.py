"""The analysts' marimo notebooks, shipped with the package (`olist-bi notebook` serves explore.py)."""
