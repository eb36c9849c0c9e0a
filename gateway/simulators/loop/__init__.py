"""Loop Live: calls and scheduled sessions."""
