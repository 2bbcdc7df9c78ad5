"""Stage: prompts (not built yet)."""
