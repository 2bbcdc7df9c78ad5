"""The LLM access layer: one async engine for every model, with a sync facade for stages.

Specs: `local:smollm2-135m` (embedded default), `gguf:/path/file.gguf`, `openai:MODEL`.
"""

from persona_testbed.llm.backends import (
    Backend,
    LlamaCppBackend,
    LLMCallError,
    OpenAIBackend,
    XLlamaCppBackend,
)
from persona_testbed.llm.cache import CacheStats, ResponseCache, default_cache_path
from persona_testbed.llm.choice import OrderedChoice, label_probabilities
from persona_testbed.llm.client import BudgetExceededError, LLMClient
from persona_testbed.llm.pricing import Price, PriceTable
from persona_testbed.llm.settings import ClientSettings
from persona_testbed.llm.specs import (
    DEFAULT_MODEL,
    ModelInfo,
    check_spec,
    embedded_model_path,
    is_embedded_model,
    list_models,
    make_backend,
    parse_spec,
)
from persona_testbed.llm.structured import json_schema_format, parse_reply
from persona_testbed.llm.types import (
    ChatRequest,
    ChatResult,
    Choice,
    Message,
    Structured,
    TokenLogprob,
)
from persona_testbed.llm.usage import ModelUsage, merge_usage

__all__ = [
    "DEFAULT_MODEL",
    "Backend",
    "BudgetExceededError",
    "CacheStats",
    "ChatRequest",
    "ChatResult",
    "Choice",
    "ClientSettings",
    "LLMCallError",
    "LLMClient",
    "LlamaCppBackend",
    "Message",
    "ModelInfo",
    "ModelUsage",
    "OpenAIBackend",
    "OrderedChoice",
    "Price",
    "PriceTable",
    "ResponseCache",
    "Structured",
    "TokenLogprob",
    "XLlamaCppBackend",
    "check_spec",
    "default_cache_path",
    "embedded_model_path",
    "is_embedded_model",
    "json_schema_format",
    "label_probabilities",
    "list_models",
    "make_backend",
    "merge_usage",
    "parse_reply",
    "parse_spec",
]
