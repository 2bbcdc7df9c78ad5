"""The `persona` command line, run as a user would run it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from persona_testbed.cli.app import main
from persona_testbed.testing.loopback import LoopbackServer


def test_bad_input_line_is_one_line_error_naming_file_and_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n{"messages": 3}\n')
    code = main(["complete", "--input", str(requests), "--output", str(tmp_path / "o.jsonl")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and "requests.jsonl:2" in err and "messages" in err
    assert not (tmp_path / "o.jsonl").exists()


def test_unknown_model_spec_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["personas", "--out", "/nonexistent/x", "--model", "nope"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: unknown model spec 'nope': use local:NAME, gguf:/path/file.gguf, openai:MODEL "
        "or anthropic:MODEL"
    )


def test_complete_against_an_openai_compatible_url(tmp_path: Path) -> None:
    requests = tmp_path / "requests.jsonl"
    lines = [
        {"messages": [{"role": "user", "content": f"q{i}"}], "max_tokens": 5} for i in range(5)
    ]
    requests.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    output = tmp_path / "out.jsonl"
    with LoopbackServer() as server:
        args = ["complete", "--model", "openai:loopback", "--base-url", server.base_url]
        args += ["--input", str(requests), "--output", str(output), "--no-progress"]
        assert main(args) == 0
        assert main(args) == 0  # the re-run replays from the cache
        assert server.stats()["total"] == 5
    results = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["text"] for r in results] == [f"echo: q{i}" for i in range(5)]
    assert all(r["cached"] for r in results)


def test_cache_stats_and_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from persona_testbed.llm import ChatResult, ResponseCache

    path = tmp_path / "c.sqlite"
    cache = ResponseCache(path)
    cache.put("k", "local:smollm2-135m", "{}", ChatResult(text="x"))
    cache.close()
    assert main(["cache", "stats", "--cache", str(path)]) == 0
    assert "local:smollm2-135m: 1" in capsys.readouterr().out
    assert main(["cache", "clear", "--cache", str(path)]) == 0
    assert "removed 1" in capsys.readouterr().out


@pytest.mark.embedded
def test_complete_with_the_embedded_model(tmp_path: Path) -> None:
    requests = tmp_path / "requests.jsonl"
    line = {"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 8}
    requests.write_text(json.dumps(line) + "\n")
    output = tmp_path / "out.jsonl"
    assert main(["complete", "--input", str(requests), "--output", str(output)]) == 0
    [result] = [json.loads(x) for x in output.read_text().splitlines()]
    assert result["model"] == "local:smollm2-135m" and result["text"].strip()
