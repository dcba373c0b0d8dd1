"""Superset's configuration for the Olist BI platform.

Every setting comes from an environment variable (documented in docs/superset.md). The
platform (`olist-bi superset serve`, the docker-compose service) sets them; nothing secret
is written here. Loaded by Superset through SUPERSET_CONFIG_PATH.
"""

import os
from datetime import timedelta


def _env(name, default=None):
    value = os.environ.get(name, "").strip()
    return value if value else default


def _int(name, default):
    return int(_env(name, str(default)))


# --- secrets and metadata ----------------------------------------------------------------
# No default key: Superset signs sessions with it. The local demo generates a random one and
# keeps it under $OLIST_HOME; anywhere else it must be given.
SECRET_KEY = _env("OLIST_SUPERSET_SECRET_KEY")
if not SECRET_KEY or len(SECRET_KEY) < 32:
    raise RuntimeError(
        "OLIST_SUPERSET_SECRET_KEY is unset or shorter than 32 characters: set a long random value "
        "(openssl rand -base64 42). The local demo (olist-bi up) generates one for you."
    )

if "change-me" in SECRET_KEY:
    raise RuntimeError("OLIST_SUPERSET_SECRET_KEY still holds the example value of .env.example: set a real secret")

SQLALCHEMY_DATABASE_URI = _env("OLIST_SUPERSET_DATABASE_URL")
if not SQLALCHEMY_DATABASE_URI:
    raise RuntimeError("OLIST_SUPERSET_DATABASE_URL is unset: Superset keeps its metadata in PostgreSQL")
SQLALCHEMY_DATABASE_URI = SQLALCHEMY_DATABASE_URI.replace("postgresql://", "postgresql+psycopg2://", 1)

# --- caches: in the metadata database by default, Redis when configured -------------------
REDIS_URL = _env("OLIST_REDIS_URL")
if REDIS_URL:
    _cache = {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": REDIS_URL, "CACHE_DEFAULT_TIMEOUT": 600}
    CACHE_CONFIG = {**_cache, "CACHE_KEY_PREFIX": "olist_cache_"}
    DATA_CACHE_CONFIG = {**_cache, "CACHE_KEY_PREFIX": "olist_data_"}
    FILTER_STATE_CACHE_CONFIG = {**_cache, "CACHE_KEY_PREFIX": "olist_filter_"}
    EXPLORE_FORM_DATA_CACHE_CONFIG = {**_cache, "CACHE_KEY_PREFIX": "olist_explore_"}
    RATELIMIT_STORAGE_URI = REDIS_URL
else:
    # Shared by every gunicorn worker (a per-worker SimpleCache would miss half the time, and
    # the after-publish warm-up would reach one worker only): files on local disk.
    _cache_dir = _env("OLIST_SUPERSET_CACHE_DIR")
    if not _cache_dir:
        raise RuntimeError("set OLIST_REDIS_URL, or OLIST_SUPERSET_CACHE_DIR for a cache on local disk (olist-bi superset serve sets it)")
    _files = {"CACHE_TYPE": "FileSystemCache", "CACHE_DEFAULT_TIMEOUT": 600, "CACHE_THRESHOLD": 5000}
    CACHE_CONFIG = {**_files, "CACHE_DIR": os.path.join(_cache_dir, "metadata")}
    DATA_CACHE_CONFIG = {**_files, "CACHE_DIR": os.path.join(_cache_dir, "data")}
    FILTER_STATE_CACHE_CONFIG = {"CACHE_TYPE": "SupersetMetastoreCache", "CACHE_DEFAULT_TIMEOUT": 86400}
    EXPLORE_FORM_DATA_CACHE_CONFIG = {"CACHE_TYPE": "SupersetMetastoreCache", "CACHE_DEFAULT_TIMEOUT": 86400}
    RATELIMIT_STORAGE_URI = "memory://"
THUMBNAIL_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}

# --- the event log (recent activity, views, timings): written off the request path -------------
from olist_bi.superset.event_logger import QueuedEventLogger  # noqa: E402

EVENT_LOGGER = QueuedEventLogger()

# --- SQL Lab --------------------------------------------------------------------------------
SQL_MAX_ROW = _int("OLIST_SUPERSET_SQL_MAX_ROW", 100_000)
DISPLAY_MAX_ROW = _int("OLIST_SUPERSET_DISPLAY_MAX_ROW", 10_000)
SQLLAB_TIMEOUT = _int("OLIST_SUPERSET_SQLLAB_TIMEOUT", 60)
SQLLAB_ASYNC_TIME_LIMIT_SEC = SQLLAB_TIMEOUT
SUPERSET_WEBSERVER_TIMEOUT = _int("OLIST_SUPERSET_WEBSERVER_TIMEOUT", 120)
# Connections are provisioned from files; nobody uploads files into the warehouse.
PREVENT_UNSAFE_DB_CONNECTIONS = True

# --- security -------------------------------------------------------------------------------
FAB_ADD_SECURITY_API = True  # roles, permissions and users are provisioned over REST
# Superset's own, with the permission lookups its Edit Role form needs (see the module).
from olist_bi.superset.security import SecurityManager  # noqa: E402

CUSTOM_SECURITY_MANAGER = SecurityManager
# Anonymous visitors get the built-in Public role, which has no permissions (no PUBLIC_ROLE_LIKE).
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = _env("OLIST_SUPERSET_HTTPS", "false").lower() == "true"
PERMANENT_SESSION_LIFETIME = timedelta(hours=_int("OLIST_SUPERSET_SESSION_HOURS", 12))
WTF_CSRF_ENABLED = True
# Superset's own Content-Security-Policy and security headers (flask-talisman) stay on.
TALISMAN_ENABLED = _env("OLIST_SUPERSET_TALISMAN", "true").lower() == "true"
HTTP_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}

# --- features the dashboards use ----------------------------------------------------------------
FEATURE_FLAGS = {
    "DASHBOARD_NATIVE_FILTERS": True,
    "DASHBOARD_CROSS_FILTERS": True,
    "DASHBOARD_RBAC": True,  # dashboards list the roles that may open them
    "ENABLE_TEMPLATE_PROCESSING": False,  # no Jinja in SQL Lab: user SQL is not templated
    "ALERT_REPORTS": False,
}

# --- look ---------------------------------------------------------------------------------------
APP_NAME = _env("OLIST_SUPERSET_APP_NAME", "Olist BI")
LOG_LEVEL = _env("OLIST_SUPERSET_LOG_LEVEL", "INFO")


# --- what the platform changes in Superset's app: a reader's landing page, readable refusal
# pages, a SQL Lab workaround (each explained in olist_bi/superset/app.py) ---------------------
from olist_bi.superset.app import mutate  # noqa: E402

FLASK_APP_MUTATOR = mutate
