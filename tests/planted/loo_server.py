"""A scripted OpenAI-compatible chat server whose "model" has a planted LOO behaviour.

The role-play annotator's choice depends on one attribute only: whether the persona card shows
`PLANTED_ATTRIBUTE`. Without it, the persona prefers the refined answer on questions whose
CRC32 is odd and the baseline on the others; with it, the opposite. Every other attribute is
ignored, so in a leave-one-out study only pairs for `PLANTED_ATTRIBUTE` change any choice
(observed agreement 0, PABAK -1) and every other attribute changes none (PABAK 1).

On questions containing `SILENT_MARKER` the annotator puts no probability on A or B when the
refined answer is listed second, so those items are undecided and must be counted, not labelled.

The choice is read position-aware from the prompt (where the refined answer is listed) and
answered with first-token log-probabilities, 0.85 on the preferred letter. The DPF steps
(base answer, critique, revision) get fixed texts in the formats the pipeline parses.

The loopback server's rules (`persona_testbed.llm.loopback`) match the last user message only,
and the persona card is in the system message, so they cannot express this behaviour.
"""

from __future__ import annotations

import json
import math
import re
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

PLANTED_ATTRIBUTE = "religion"
REFINED = "[refined]"
SILENT_MARKER = "(silent)"
PREFERRED = 0.85


def _question(user: str) -> str:
    match = re.search(r"Someone asked: (.*)", user)
    return match.group(1).strip() if match else user


def _card_shows(system: str, attribute: str) -> bool:
    return re.search(rf"^{re.escape(attribute)}: ", system, re.MULTILINE) is not None


def planted_choice(system: str, user: str) -> dict[str, float] | None:
    """The annotator's first-token distribution over A/B, or None (no mass on A or B)."""
    refined_first = user.find(REFINED) < user.find("Answer B:")
    if SILENT_MARKER in user and not refined_first:
        return None
    coin = zlib.crc32(_question(user).encode()) % 2 == 1
    prefers_refined = coin != _card_shows(system, PLANTED_ATTRIBUTE)
    wants_a = prefers_refined == refined_first
    other = 1.0 - PREFERRED
    return {"A": PREFERRED, "B": other} if wants_a else {"A": other, "B": PREFERRED}


def dpf_text(user: str) -> str:
    if "Revise the COMPLETION" in user:
        return f"REVISED PREFERENCE: {REFINED} a shorter, kinder answer.\nDONE"
    if "Examine the COMPLETION" in user:
        return "EVALUATION: too long. SUGGESTIONS: be brief.\nDONE"
    return "A plain answer."


def _completion(body: dict[str, Any]) -> dict[str, Any]:
    messages = body.get("messages") or []
    system = "\n".join(m.get("content", "") for m in messages if m.get("role") == "system")
    user = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
    logprobs = None
    if body.get("logprobs"):
        dist = planted_choice(system, user)
        if dist is None:
            text, alternatives = "Hmm", [("Hmm", 0.0)]
        else:
            ranked = sorted(dist.items(), key=lambda kv: kv[1], reverse=True)
            text, alternatives = ranked[0][0], [(t, math.log(p)) for t, p in ranked]
        logprobs = {
            "content": [
                {
                    "token": alternatives[0][0],
                    "logprob": alternatives[0][1],
                    "top_logprobs": [{"token": t, "logprob": lp} for t, lp in alternatives],
                }
            ]
        }
    else:
        text = dpf_text(user)
    return {
        "id": "chatcmpl-planted",
        "object": "chat.completion",
        "model": body.get("model", "planted"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
                "logprobs": logprobs,
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": len(text.split()) or 1},
    }


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self.send_error(404)
            return
        payload = json.dumps(_completion(body)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet


class PlantedLooServer:
    """The planted server on 127.0.0.1 (a free port), served from a thread; a context manager."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
