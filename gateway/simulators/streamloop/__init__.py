"""Streamloop: 24/7 playlist streams with idempotent writes and a rate limit."""
