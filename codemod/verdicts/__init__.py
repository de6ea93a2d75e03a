"""Verdicts: what evidence and the allowlist decide about each site."""
