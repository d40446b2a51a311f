"""The landing page at ``/``: where a person who opens the gateway's address goes next
(GraphiQL, the admin, the playground)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llm_gateway.admin.web import SECURITY_HEADERS, TEMPLATES


async def landing(request: Request) -> Response:
    response = TEMPLATES.TemplateResponse(request, "landing.html")
    response.headers.update(SECURITY_HEADERS)
    return response


routes = [Route("/", landing, methods=["GET"])]
