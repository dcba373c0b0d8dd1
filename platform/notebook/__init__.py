"""The analysts' marimo notebook: explore.py (package data) and the server that runs it
(server.py, `olist-bi notebook`)."""
