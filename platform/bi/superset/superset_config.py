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
from olist_bi.bi.superset.event_logger import QueuedEventLogger  # noqa: E402

EVENT_LOGGER = QueuedEventLogger()

# --- SQL Lab --------------------------------------------------------------------------------
SQL_MAX_ROW = _int("OLIST_SUPERSET_SQL_MAX_ROW", 100_000)
DISPLAY_MAX_ROW = _int("OLIST_SUPERSET_DISPLAY_MAX_ROW", 10_000)
SQLLAB_TIMEOUT = round(float(_env("OLIST_QUERY_TIMEOUT_SECONDS", "60")))  # the warehouse dialect interrupts a query at this limit
SQLLAB_ASYNC_TIME_LIMIT_SEC = SQLLAB_TIMEOUT
SUPERSET_WEBSERVER_TIMEOUT = _int("OLIST_SUPERSET_WEBSERVER_TIMEOUT", 120)
# Connections are provisioned from files; nobody uploads files into the warehouse.
PREVENT_UNSAFE_DB_CONNECTIONS = True

# --- security -------------------------------------------------------------------------------
FAB_ADD_SECURITY_API = True  # roles, permissions and users are provisioned over REST
# Superset's own, with the permission lookups its Edit Role form needs (see the module).
from olist_bi.bi.superset.security import SecurityManager  # noqa: E402

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
    "ALERT_REPORTS": True,  # scheduled reports and alerts (platform/notify/, docs/reports.md)
    "PLAYWRIGHT_REPORTS_AND_THUMBNAILS": True,  # screenshots with Playwright, on Debian's Chromium
}

# --- Alerts & Reports: a Celery worker and beat beside the web server (olist-bi superset serve
# starts them), screenshots with Playwright, mail through the platform's SMTP server ------------
from celery.schedules import crontab  # noqa: E402

# Redis when configured; else kombu's SQLAlchemy transport on PostgreSQL (a database of its own
# beside Superset's metadata, which olist-bi superset serve creates and names here).
_broker = REDIS_URL or _env("OLIST_SUPERSET_BROKER_URL")
if not _broker:
    raise RuntimeError("set OLIST_REDIS_URL, or OLIST_SUPERSET_BROKER_URL for Celery on PostgreSQL (olist-bi superset serve sets it)")
if not REDIS_URL:
    _broker = _broker.replace("postgresql://", "postgresql+psycopg2://", 1)


class CeleryConfig:
    broker_url = REDIS_URL or f"sqla+{_broker}"
    result_backend = REDIS_URL or f"db+{_broker}"
    imports = ("superset.sql_lab", "superset.tasks.scheduler")
    worker_prefetch_multiplier = 1
    task_acks_late = False
    beat_schedule = {
        # Every minute, the reports whose crontab fell in the last minute are queued.
        "reports.scheduler": {
            "task": "reports.scheduler",
            "schedule": crontab(minute="*", hour="*"),
            "options": {"expires": int(timedelta(weeks=1).total_seconds())},
        },
        "reports.prune_log": {"task": "reports.prune_log", "schedule": crontab(minute=0, hour=0)},
    }


CELERY_CONFIG = CeleryConfig

# The browser that takes the screenshots reaches Superset here (the server's own address);
# links in the mails use the address users know.
WEBDRIVER_BASEURL = _env("OLIST_SUPERSET_WEBDRIVER_URL", "http://127.0.0.1:8088/")
WEBDRIVER_BASEURL_USER_FRIENDLY = _env("OLIST_SUPERSET_PUBLIC_URL", WEBDRIVER_BASEURL)
from olist_bi.bi.superset.screenshots import CHART_WINDOW, DASHBOARD_WINDOW, authenticate  # noqa: E402

WEBDRIVER_WINDOW = {"dashboard": DASHBOARD_WINDOW, "slice": CHART_WINDOW, "pixel_density": 1}  # see screenshots.py
# Chromium's sandbox needs user namespaces, which containers and CI machines often lack.
WEBDRIVER_OPTION_ARGS = ["--headless", "--no-sandbox", "--disable-dev-shm-usage"]
SCREENSHOT_PLAYWRIGHT_WAIT_EVENT = "load"

WEBDRIVER_AUTH_FUNC = authenticate  # Superset's own, without its /login/ page (see the module)

SMTP_HOST = _env("OLIST_SMTP_HOST", "")
SMTP_PORT = _int("OLIST_SMTP_PORT", 587)
SMTP_STARTTLS = _env("OLIST_SMTP_SECURITY", "starttls") == "starttls"
SMTP_SSL = _env("OLIST_SMTP_SECURITY", "starttls") == "tls"
SMTP_SSL_SERVER_AUTH = SMTP_STARTTLS or SMTP_SSL  # check the server's certificate
SMTP_USER = _env("OLIST_SMTP_USER", "")
SMTP_PASSWORD = _env("OLIST_SMTP_PASSWORD", "")
SMTP_MAIL_FROM = _env("OLIST_MAIL_FROM", "olist-bi@localhost")
EMAIL_REPORTS_SUBJECT_PREFIX = "[Olist BI]"  # Superset adds the space
EMAIL_REPORTS_CTA = "Open in Olist BI"
ALERT_REPORTS_NOTIFICATION_DRY_RUN = False

# --- look ---------------------------------------------------------------------------------------
APP_NAME = _env("OLIST_SUPERSET_APP_NAME", "Olist BI")
LOG_LEVEL = _env("OLIST_SUPERSET_LOG_LEVEL", "INFO")


# --- what the platform changes in Superset's app: a reader's landing page, readable refusal
# pages, a SQL Lab workaround (each explained in olist_bi/superset/app.py) ---------------------
from olist_bi.bi.superset.app import mutate  # noqa: E402

FLASK_APP_MUTATOR = mutate

# --- scope, in two walls (olist_bi/superset/scope.py): a user whose role has a row scope reads
# a warehouse copy holding only the scope's rows (DB_CONNECTION_MUTATOR), and a reader's or a
# scoped user's statements are refused when they could read past its datasets or rows (a UNION
# branch, another relation, a sub-query without the row filter: SQL_QUERY_MUTATOR) ----------------
from olist_bi.bi.superset.scope import connection, guard  # noqa: E402

DB_CONNECTION_MUTATOR = connection
SQL_QUERY_MUTATOR = guard
