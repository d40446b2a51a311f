"""The playground: chat with any model through the public GraphQL API, in the browser.

The page is a shell; ``static/playground/*.js`` does everything over one
``graphql-transport-ws`` socket, authenticated with the signed-in user's own token (as
GraphiQL is), so what works here works for any client. Staff open it; under DEBUG, so does
a user who signed in with a development token (``web.signed_in``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llm_gateway.admin.web import Staff, render, staff_page


async def _playground(request: Request, user: Staff) -> Response:
    return render(
        request,
        "playground.html",
        {"title": "Playground", "token": user.token, "endpoint": "/graphql"},
        staff=user,
    )


routes = [Route("/playground", staff_page(_playground, playground=True), methods=["GET"])]
