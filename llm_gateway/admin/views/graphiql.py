"""GraphiQL, opened with the staff member's token already in its headers editor."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llm_gateway.admin.web import Staff, render, staff_page


async def _graphiql(request: Request, staff: Staff) -> Response:
    headers = json.dumps({"Authorization": f"Bearer {staff.token}"}, indent=2)
    return render(
        request,
        "graphiql.html",
        {"title": "GraphiQL", "headers": headers, "target": "/graphql"},
        staff=staff,
    )


routes = [Route("/graphiql", staff_page(_graphiql), methods=["GET"])]
