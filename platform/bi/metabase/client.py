"""A small client for Metabase's REST API: wait for start-up, first-run setup, a session or an
API key, JSON calls, and errors that say what went wrong and what to do.

Metabase answers errors in several shapes (its server/middleware/exceptions.clj): plain text
for a bare status ("Not found.", the stale-revision message), `{"message": ...}` for a failed
connection test, `{"errors": {...}, "specific-errors": {...}}` for a body that fails validation.
`MetabaseApiError` turns each into one readable line.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable

import requests

SESSION_HEADER = "X-Metabase-Session"
API_KEY_HEADER = "X-API-KEY"


class MetabaseApiError(RuntimeError):
    """A call failed; the message has the method, path, status, Metabase's words and a hint."""

    HINTS = {
        400: "Metabase refused the request",
        401: "check OLIST_METABASE_ADMIN_EMAIL and OLIST_METABASE_ADMIN_PASSWORD (or OLIST_METABASE_API_KEY)",
        402: "this needs a paid Metabase feature",
        403: "the provisioning user must be a Metabase admin",
        409: "someone else changed the permissions meanwhile",
        503: "Metabase is still starting",
    }

    def __init__(self, method: str, path: str, status: int, body: str, hint: str | None = None):
        self.status = status
        self.detail = _detail(body)
        hint = hint or self.HINTS.get(status)
        super().__init__(f"Metabase {method} {path} answered {status}: {self.detail}" + (f" ({hint})" if hint else ""))


class MetabaseStarting(MetabaseApiError):
    """Metabase kept answering 503 (initializing) for longer than we were willing to wait."""


def _detail(body: str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:500] or "(no body)"
    if isinstance(data, dict):
        if data.get("message"):
            fields = data.get("errors") or {}
            return str(data["message"]).strip() + (
                "; " + "; ".join(f"{k}: {v}" for k, v in fields.items()) if isinstance(fields, dict) and fields else ""
            )
        if data.get("errors"):
            errors = data["errors"]
            return "; ".join(f"{k}: {v}" for k, v in errors.items()) if isinstance(errors, dict) else str(errors)
        if data.get("status"):
            return str(data["status"])
    return json.dumps(data)[:500]


class MetabaseClient:
    def __init__(self, url: str, timeout: float = 60):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    # --- start-up and authentication -------------------------------------------------------

    def healthy(self) -> bool:
        """Whether Metabase answers GET /api/health with 200 now (no waiting)."""
        try:
            return self.session.get(f"{self.url}/api/health", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def wait_until_ready(self, timeout: float = 600, poll: float = 2, say: Callable[[str], None] | None = None) -> None:
        """Poll GET /api/health until Metabase says ok. A first start (database migrations,
        plugin extraction) takes a minute or two; raise `MetabaseStarting` after `timeout`."""
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            try:
                response = self.session.get(f"{self.url}/api/health", timeout=self.timeout)
                if response.status_code == 200:
                    return
                last = response.text
                if response.status_code != 503:
                    raise MetabaseApiError("GET", "/api/health", response.status_code, response.text, "is this Metabase?")
                if say:
                    progress = _progress(response.text)
                    say(f"Metabase is starting{f' ({progress:.0%})' if progress is not None else ''}; waiting")
            except requests.ConnectionError:
                last = f"no Metabase answers at {self.url}"
                if say:
                    say(f"no Metabase answers at {self.url} yet; waiting")
            if time.monotonic() >= deadline:
                raise MetabaseStarting(
                    "GET",
                    "/api/health",
                    503,
                    last,
                    f"not ready after {timeout:.0f} s; a first start takes minutes: wait and run again, or read Metabase's log "
                    "(`docker-compose logs metabase`)",
                )
            time.sleep(poll)

    def properties(self) -> dict:
        return self.get("/api/session/properties")

    def setup(self, token: str, email: str, password: str, site_name: str) -> None:
        """Create the first admin (only possible while Metabase has no user) and use its session."""
        body = {
            "token": token,
            "user": {"email": email, "password": password, "first_name": "Olist", "last_name": "Admin"},
            "prefs": {"site_name": site_name},
        }
        self.use_session(self.post("/api/setup/", body)["id"])

    def login(self, email: str, password: str) -> None:
        self.use_session(self.post("/api/session/", {"username": email, "password": password})["id"])

    def use_session(self, session_id: str) -> None:
        self.session.headers[SESSION_HEADER] = session_id

    def use_api_key(self, key: str) -> None:
        self.session.headers[API_KEY_HEADER] = key

    # --- calls -----------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs) -> Any:
        try:
            response = self.session.request(method, f"{self.url}{path}", timeout=self.timeout, **kwargs)
        except requests.ConnectionError:
            raise MetabaseApiError(method, path, 0, f"no Metabase answers at {self.url}", "is it running? is the URL right?") from None
        if response.status_code >= 400:
            raise MetabaseApiError(method, path, response.status_code, response.text)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text

    def get(self, path: str, **params) -> Any:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, payload: Any = None) -> Any:
        return self.request("POST", path, json=payload)

    def put(self, path: str, payload: Any, **params) -> Any:
        return self.request("PUT", path, json=payload, params=params or None)


def _progress(body: str) -> float | None:
    try:
        value = json.loads(body).get("progress")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, (int, float)) else None
