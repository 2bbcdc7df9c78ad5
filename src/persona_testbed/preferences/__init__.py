"""Stage: preferences (not built yet)."""
