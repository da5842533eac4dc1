"""Analyze stage: pure functions from artifact arrays to tidy tables (lists of row dicts)."""
