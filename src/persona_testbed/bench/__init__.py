"""Stage: bench (not built yet)."""
