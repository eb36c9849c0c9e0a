"""Livepush: streams, destinations and recordings."""
