"""HTTP as the suites speak it: every request and answer is recorded, so a report can show the exchange.

A target is reached over real HTTP (requests), or in-process through its WSGI callables (a requests transport
adapter that calls the app through werkzeug's test client), which is how the project's own tests drive the emulator
without sockets. Either way the suite sees the same `requests.Response`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from werkzeug.test import Client

EXCERPT = 600
MASKED_HEADERS = ("apikey", "x-mock-control-token")


@dataclass
class Exchange:
    method: str
    url: str
    request_headers: dict[str, str]
    request_body: bytes
    status: int
    reason: str
    response_headers: dict[str, str]
    response_body: bytes

    def json(self) -> Any:
        return json.loads(self.response_body)

    def render(self) -> str:
        """The exchange as a person reads it: request line, the headers that matter, bodies cut short."""
        lines = [f"  > {self.method} {self.url}"]
        for name, value in self.request_headers.items():
            lines.append(f"  > {name}: {_mask(name, value)}")
        if self.request_body:
            lines.append(f"  > {_excerpt(self.request_body)}")
        content_type = self.response_headers.get("Content-Type", "")
        lines.append(f"  < {self.status} {self.reason}" + (f"  ({content_type})" if content_type else ""))
        if self.response_body:
            lines.append(f"  < {_excerpt(self.response_body)}")
        return "\n".join(lines)


def _mask(name: str, value: str) -> str:
    if name.lower() in MASKED_HEADERS and len(value) > 8:
        return value[:4] + "…" + value[-4:]
    return value


def _excerpt(body: bytes) -> str:
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return f"<{len(body)} bytes, not UTF-8>"
    text = text.replace("\n", "\\n")
    return text if len(text) <= EXCERPT else text[:EXCERPT] + f"… ({len(body)} bytes)"


# Only the request headers a reader needs; requests adds its own (User-Agent, Accept-Encoding...).
SHOWN_REQUEST_HEADERS = ("apikey", "activation-key", "active-deployment-id", "content-type")


class WsgiAdapter(BaseAdapter):
    """A requests transport that answers from a WSGI callable instead of a socket."""

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.client = Client(app)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        parts = urlsplit(request.url or "")
        body = request.body
        if isinstance(body, str):
            body = body.encode()
        answer = self.client.open(
            path=parts.path or "/",
            query_string=parts.query,
            method=request.method or "GET",
            headers=list(request.headers.items()),
            data=body or b"",
            base_url=f"{parts.scheme}://{parts.netloc}",
        )
        response = requests.Response()
        response.status_code = answer.status_code
        response.reason = answer.status.split(" ", 1)[1] if " " in answer.status else ""
        response.headers = CaseInsensitiveDict(answer.headers.items())
        response.raw = io.BytesIO(answer.get_data())
        response.url = request.url or ""
        response.request = request
        response.encoding = answer.charset if answer.mimetype.startswith("text") else None
        return response

    def close(self) -> None:
        pass


@dataclass
class Recorder:
    """The exchanges of the step being run; the suite moves them into its step log."""

    exchanges: list[Exchange] = field(default_factory=list)

    def take(self) -> list[Exchange]:
        taken, self.exchanges = self.exchanges, []
        return taken


class Connection:
    """One session to a target: its base URLs reached over HTTP or in-process, every exchange recorded."""

    def __init__(
        self,
        wsgi_apps: Mapping[str, Any] | None = None,
        verify: bool | str = True,
        timeout: float = 30.0,
    ) -> None:
        self.session = requests.Session()
        self.verify = verify  # passed on every request: REQUESTS_CA_BUNDLE would override the session's
        self.timeout = timeout
        self.recorder = Recorder()
        self.clients = {base_url.rstrip("/"): Client(app) for base_url, app in (wsgi_apps or {}).items()}
        for base_url, app in (wsgi_apps or {}).items():
            self.session.mount(base_url.rstrip("/") + "/", WsgiAdapter(app))

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        json_body: object = None,
        params: Mapping[str, str] | None = None,
        record: bool = True,
    ) -> Exchange:
        sent_headers = dict(headers or {})
        data = body
        if json_body is not None:
            data = json.dumps(json_body).encode()
            sent_headers.setdefault("Content-Type", "application/json")
        elif body is not None:
            sent_headers.setdefault("Content-Type", "application/octet-stream")
        direct = self._direct(method, url, sent_headers, data, params)
        if direct is not None:
            if record:
                self.recorder.exchanges.append(direct)
            return direct
        response = self.session.request(
            method,
            url,
            headers=sent_headers,
            data=data,
            params=params,
            timeout=self.timeout,
            allow_redirects=False,
            verify=self.verify,
        )
        exchange = Exchange(
            method=method,
            url=response.request.url or url,
            request_headers={k: v for k, v in sent_headers.items() if k.lower() in SHOWN_REQUEST_HEADERS},
            request_body=data or b"",
            status=response.status_code,
            reason=response.reason or "",
            response_headers=dict(response.headers),
            response_body=response.content,
        )
        if record:
            self.recorder.exchanges.append(exchange)
        return exchange

    def _direct(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        data: bytes | None,
        params: Mapping[str, str] | None,
    ) -> Exchange | None:
        """An in-process target answers straight from its WSGI app (no requests machinery: twice as fast)."""
        base_url = next((base for base in self.clients if url.startswith(base + "/")), None)
        if base_url is None:
            return None
        client = self.clients[base_url]
        parts = urlsplit(url)
        query = urlencode(params) if params else parts.query
        answer = client.open(
            path=parts.path, query_string=query, method=method, headers=headers, data=data or b"", base_url=base_url
        )
        return Exchange(
            method=method,
            url=url + (f"?{query}" if params else ""),
            request_headers={k: v for k, v in headers.items() if k.lower() in SHOWN_REQUEST_HEADERS},
            request_body=data or b"",
            status=answer.status_code,
            reason=answer.status.split(" ", 1)[1] if " " in answer.status else "",
            response_headers=dict(answer.headers.items()),
            response_body=answer.get_data(),
        )

    def close(self) -> None:
        self.session.close()
