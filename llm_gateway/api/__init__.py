"""The OpenAI-compatible HTTP API (``/v1``): another front door onto the same services."""
