"""A small client for Superset's REST API: login, CSRF, JSON calls with clear errors."""

from __future__ import annotations

import json
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

# gunicorn closes an idle keep-alive connection after 2 s; a request sent on it just then fails
# with "Remote end closed connection without response". Reads are retried on a new connection.
RETRY_READS = Retry(total=2, connect=2, read=2, status=0, allowed_methods={"GET", "HEAD"}, backoff_factor=0.2)


class SupersetApiError(RuntimeError):
    """A call failed; the message has the method, path, status and Superset's own words."""

    def __init__(self, method: str, path: str, status: int, body: str):
        self.status = status
        try:
            detail = json.loads(body)
            detail = detail.get("message") or detail.get("errors") or detail
        except ValueError:
            detail = body[:500]
        super().__init__(f"Superset {method} {path} answered {status}: {detail}")


class SupersetClient:
    def __init__(self, url: str, username: str, password: str, timeout: float = 120):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.mount("http://", HTTPAdapter(max_retries=RETRY_READS))
        self.session.mount("https://", HTTPAdapter(max_retries=RETRY_READS))
        try:
            response = self.session.post(
                f"{self.url}/api/v1/security/login",
                json={"username": username, "password": password, "provider": "db", "refresh": True},
                timeout=timeout,
            )
        except requests.ConnectionError:
            raise SupersetApiError("POST", "/api/v1/security/login", 0, f"no Superset answers at {self.url}") from None
        if response.status_code != 200:
            raise SupersetApiError("POST", "/api/v1/security/login", response.status_code, response.text)
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        csrf = self.get("/api/v1/security/csrf_token/")["result"]
        self.session.headers.update({"X-CSRFToken": csrf, "Referer": self.url})

    def request(self, method: str, path: str, **kwargs) -> Any:
        response = self.session.request(method, f"{self.url}{path}", timeout=self.timeout, **kwargs)
        if response.status_code >= 400:
            raise SupersetApiError(method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def get(self, path: str, **params) -> Any:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, payload: Any = None, **kwargs) -> Any:
        return self.request("POST", path, json=payload, **kwargs) if payload is not None else self.request("POST", path, **kwargs)

    def put(self, path: str, payload: Any) -> Any:
        return self.request("PUT", path, json=payload)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def named(self, path: str, name: str) -> list[dict]:
        """The rows of a list endpoint whose `name` is exactly `name` (quoted as rison wants)."""
        quoted = name.replace("!", "!!").replace("'", "!'")
        return self.get(path, q=f"(filters:!((col:name,opr:eq,value:'{quoted}')))")["result"]

    def list_all(self, path: str, columns: list[str] | None = None, order: str | None = None) -> list[dict]:
        """Every row of a list endpoint, page by page (give `order`, a column the endpoint
        sorts by, when there may be more than one page: unordered pages can overlap)."""
        rows, page = [], 0
        while True:
            q = f"(page:{page},page_size:100"
            q += f",order_column:{order},order_direction:asc" if order else ""
            q += f",columns:!({','.join(columns)}))" if columns else ")"
            result = self.get(path, q=q)
            rows += result["result"]
            if len(rows) >= result.get("count", len(rows)) or not result["result"]:
                return rows
            page += 1
