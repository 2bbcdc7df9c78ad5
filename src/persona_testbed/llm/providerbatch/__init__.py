"""`execution: batch`: the requests a wave lacks go to the provider's batch API (OpenAI Batch,
Anthropic Message Batches) instead of being sent one by one.

  provider.py         the provider contract (submit, retrieve, results) and the SDK loading
  openai_batch.py     OpenAI Batch through the `openai` SDK (files + batches)
  anthropic_batch.py  Anthropic Message Batches through the `anthropic` SDK
  ledger.py           the append-only record of every submitted batch (never submit twice)
  executor.py         the WaveExecutor: submit, poll, import into the cache, retry failures

Registered as the "batch" execution mode in llm.execution; nothing here imports an SDK until a
client under `execution: batch` is built.
"""
