"""Stage: annotate (not built yet)."""
