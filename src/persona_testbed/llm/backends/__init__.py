"""Model backends: embedded/GGUF (llama.cpp) and OpenAI-compatible HTTP. The scripted fake
for tests lives in persona_testbed.testing."""

from persona_testbed.llm.backends.base import Backend, LLMCallError
from persona_testbed.llm.backends.llamacpp import LlamaCppBackend
from persona_testbed.llm.backends.openai_http import OpenAIBackend

__all__ = ["Backend", "LLMCallError", "LlamaCppBackend", "OpenAIBackend"]
