"""live-gateway: one GraphQL schema over every live event, wherever it runs."""

__version__ = "0.1.0"
