"""What every HTTP front door shares: the hardened GraphQL view, the request size limits,
request ids, and the previous service's REST endpoint kept for operators' scripts.

The OpenAI-compatible ``/v1`` API (``llm_gateway.api``) and the admin (``llm_gateway.admin``)
are front doors of their own; ``app.create_app`` mounts them all.
"""
