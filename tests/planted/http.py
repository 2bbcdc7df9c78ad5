"""A minimal OpenAI-compatible chat server on 127.0.0.1 whose replies come from a Python
function: the plumbing of the planted-behaviour servers (bench_server.py, judge_server.py).

The loopback server's rules (`persona_testbed.testing.loopback`) match substrings of the last user
message with fixed replies; a planted behaviour needs the persona card (system message), the
sample seed and a seeded coin per request, so these servers compute each reply instead.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self


@dataclass(frozen=True)
class Reply:
    """Text, and for a logprobs request the first token's distribution (probabilities)."""

    text: str
    first_token: dict[str, float] | None = None


@dataclass(frozen=True)
class Request:
    system: str
    user: str
    seed: int | None
    wants_logprobs: bool


Behaviour = Callable[[Request], Reply]


def coin(*parts: object) -> float:
    """A uniform number in [0, 1) fixed by `parts` (the planted behaviour's randomness)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _request(body: dict[str, Any]) -> Request:
    messages = body.get("messages") or []

    def text(message: dict[str, Any]) -> str:
        content = message.get("content", "")
        return content if isinstance(content, str) else ""

    system = "\n".join(text(m) for m in messages if m.get("role") == "system")
    user = next((text(m) for m in reversed(messages) if m.get("role") == "user"), "")
    return Request(system, user, body.get("seed"), bool(body.get("logprobs")))


def _completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    logprobs = None
    if reply.first_token is not None:
        ranked = sorted(reply.first_token.items(), key=lambda kv: kv[1], reverse=True)
        top = [{"token": t, "logprob": math.log(p)} for t, p in ranked]
        logprobs = {"content": [{**top[0], "top_logprobs": top}]}
    return {
        "id": "chatcmpl-planted",
        "object": "chat.completion",
        "model": body.get("model", "planted"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text},
                "finish_reason": "stop",
                "logprobs": logprobs,
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": max(1, len(reply.text.split()))},
    }


class PlantedServer:
    """`with PlantedServer(behaviour) as server:` serves at `server.base_url` until the block
    ends; `requests` counts what it answered."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.requests = 0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self.send_error(404)
                    return
                with server._lock:
                    server.requests += 1
                payload = json.dumps(_completion(body, server.behaviour(_request(body))))
                data = payload.encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet

        return Handler

    def __enter__(self) -> Self:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._httpd is not None and self._thread is not None
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
