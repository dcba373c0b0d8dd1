"""Gunicorn's settings for Superset's web server (`--config python:olist_bi.bi.superset.gunicorn`;
`olist-bi superset serve` names it, docker-compose.yml through GUNICORN_CMD_ARGS).

A loaded Superset worker holds about 420,000 objects that live as long as it does (its
modules, Flask-AppBuilder's views, SQLAlchemy's mappers). Python's collector walks all of them
in each full collection, about 200 ms spent on whichever request is running then.
`gc.freeze()` once the worker has loaded Superset moves them to the permanent generation, which
no collection walks; objects made later are collected as before (docs/serving.md).
"""

import gc


def post_worker_init(worker) -> None:
    """Gunicorn calls this in each worker once the app is loaded, before it serves a request."""
    gc.collect()  # what the start-up left as garbage is freed, not frozen
    gc.freeze()
    worker.log.info("olist-bi: %d objects of the loaded app frozen out of garbage collection", gc.get_freeze_count())
