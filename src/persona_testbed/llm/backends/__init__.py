"""Model backends: embedded/GGUF (llama.cpp through xllamacpp or llama-cpp-python) and
OpenAI-compatible HTTP. The scripted fake for tests lives in persona_testbed.testing."""

from persona_testbed.llm.backends.base import Backend, LLMCallError
from persona_testbed.llm.backends.llamacpp import LlamaCppBackend
from persona_testbed.llm.backends.openai_http import OpenAIBackend
from persona_testbed.llm.backends.xllamacpp import XLlamaCppBackend

__all__ = ["Backend", "LLMCallError", "LlamaCppBackend", "OpenAIBackend", "XLlamaCppBackend"]
