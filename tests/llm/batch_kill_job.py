"""The job tests/llm/test_batch_kill_resume.py runs in a child process and SIGKILLs: three
dependent waves (questions, a critique of each answer, a revision of each critique) under
`execution: batch`, each wave split into batches of BATCH_REQUESTS; the answers go to OUT as
JSON once the job is done.

    python tests/llm/batch_kill_job.py SPEC BASE_URL CACHE OUT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from persona_testbed.llm import ClientSettings, LLMClient, Message
from persona_testbed.llm.types import ChatRequest

QUESTIONS = 10
BATCH_REQUESTS = 4
POLL_S = 0.05


def client_for(spec: str, base_url: str, cache: Path, execution: str = "batch") -> LLMClient:
    options: dict[str, Any] = {
        "cache_path": cache,
        "show_progress": False,
        "max_retries": 0,
        "timeout_s": 30.0,
        "execution": execution,
        "batch": {"poll_s": POLL_S, "max_requests": BATCH_REQUESTS},
    }
    if spec.startswith("anthropic:"):
        options |= {"anthropic_base_url": base_url, "anthropic_api_key": "test-key"}
    else:
        options["base_url"] = base_url
    return LLMClient.from_spec(spec, ClientSettings.model_validate(options))


def job(client: LLMClient) -> list[str]:
    """Each wave is asked only once the one before it is answered."""

    def ask(text: str) -> ChatRequest:
        return client.request([Message(role="user", content=text)])

    first = client.complete_batch([ask(f"question {i}") for i in range(QUESTIONS)])
    second = client.complete_batch([ask(f"critique {r.text}") for r in first])
    third = client.complete_batch([ask(f"revise {r.text}") for r in second])
    return [r.text for r in (*first, *second, *third)]


def main(argv: list[str]) -> int:
    spec, base_url, cache, out = argv
    answers = job(client_for(spec, base_url, Path(cache)))
    Path(out).write_text(json.dumps(answers))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
