"""The shared command options: client options declared once, clients opened and closed."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from persona_testbed.cli.options import (
    ClientOptions,
    ModelOption,
    SeedOption,
    open_clients,
    with_client_options,
)
from persona_testbed.errors import PersonaError
from persona_testbed.llm import ClientSettings, LLMClient


def test_client_options_stand_where_the_command_declares_them() -> None:
    def command(
        seed: SeedOption = 0,
        client_options: ClientOptions = ClientOptions(),
        force: bool = False,
    ) -> None:
        """A command."""

    names = list(inspect.signature(with_client_options(command)).parameters)
    assert names == [
        "seed",
        *("base_url", "concurrency", "cache", "no_cache", "max_cost_usd", "prices", "timeout_s"),
        *("execution", "batch_dir", "batch_wait"),
        "progress",
        "force",
    ]
    omitted = with_client_options(command, omit=("prices", "timeout_s"))
    assert "prices" not in inspect.signature(omitted).parameters


def test_typer_passes_the_options_as_one_client_options(tmp_path: Path) -> None:
    seen: list[tuple[str, ClientOptions]] = []

    def command(
        model: ModelOption = "local:smollm2-135m",
        client_options: ClientOptions = ClientOptions(),
    ) -> None:
        """Record what the command got."""
        seen.append((model, client_options))

    app = typer.Typer()
    app.command("go")(with_client_options(command, omit=("prices",)))
    app.command("other")(lambda: None)
    runner = CliRunner()
    args = ["go", "--model", "openai:x", "--concurrency", "3", "--cache", str(tmp_path / "c.db")]
    result = runner.invoke(app, [*args, "--timeout", "5", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert seen == [
        (
            "openai:x",
            ClientOptions(concurrency=3, cache=tmp_path / "c.db", timeout_s=5.0, progress=False),
        )
    ]
    assert runner.invoke(app, ["go", "--prices", "p.yaml"]).exit_code == 2  # omitted
    usage = runner.invoke(app, ["go", "--help"], terminal_width=200).output
    assert "Record what the command got." in usage
    assert usage.index("--model") < usage.index("--base-url") < usage.index("--no-progress")


def test_client_options_become_settings(tmp_path: Path) -> None:
    settings = ClientOptions(base_url="http://127.0.0.1:9/v1", concurrency=2, no_cache=True)
    built = settings.settings()
    assert built.base_url == "http://127.0.0.1:9/v1"
    assert built.concurrency == 2 and built.cache_path is None
    cached = ClientOptions(cache=tmp_path / "c.db", max_cost_usd=1.5, timeout_s=9.0).settings()
    assert cached.cache_path == tmp_path / "c.db"
    assert cached.max_cost_usd == 1.5 and cached.timeout_s == 9.0


def test_a_command_without_client_options_is_refused() -> None:
    def command(seed: int = 0) -> None:
        """No client options."""

    with pytest.raises(TypeError, match="client_options"):
        with_client_options(command)


def test_open_clients_opens_one_per_spec_and_closes_them_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = ClientSettings(base_url="http://127.0.0.1:9/v1", cache_path=tmp_path / "c.db")
    with open_clients(["openai:a", "openai:b", "openai:a"], settings) as clients:
        assert list(clients) == ["openai:a", "openai:b"]
        opened = list(clients.values())
        assert all(client.cache is not None for client in opened)
    assert all(client.cache is None for client in opened)

    closed: list[str] = []
    close = LLMClient.close

    def recording_close(client: LLMClient) -> None:
        closed.append(client.model_id)
        close(client)

    monkeypatch.setattr(LLMClient, "close", recording_close)
    with pytest.raises(PersonaError), open_clients(["openai:a", "nope:x"], settings):
        pytest.fail("a bad spec fails before the body runs")
    assert closed == ["openai:a"]
