"""Stage: agreement (not built yet)."""
