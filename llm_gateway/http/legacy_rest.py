"""The previous service's REST endpoints that operators' scripts still call.

``POST /api/v1/admin/models/reload`` (staff bearer token) does what the ``reloadModels``
mutation does, through the same service, and answers as the old service did:
``{"status": "ok", "message": "Reloaded N models", "models": [names]}``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from llm_gateway.errors import Forbidden, GatewayError, Unauthenticated
from llm_gateway.services.catalog import models as models_admin
from llm_gateway.services.container import Services
from llm_gateway.services.staff.audit import Actor


def _error(status: int, error: GatewayError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        {"code": error.code, "message": error.message}, status_code=status, headers=headers
    )


def _staff_actor(request: Request, services: Services) -> Actor:
    """The caller as the audit log records them; raises unless they are staff."""
    principal = services.verifier.verify_header(request.headers.get("authorization"))
    if principal is None:
        raise Unauthenticated("Authentication required: send 'Authorization: Bearer <token>'.")
    if not principal.is_staff:
        raise Forbidden("This operation is for staff only.")
    request_id = request.scope.get("state", {}).get("request_id")
    return Actor(
        user_id=principal.user_id,
        ip_address=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        request_id=request_id if isinstance(request_id, str) else None,
    )


async def reload_models(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        actor = _staff_actor(request, services)
    except Unauthenticated as exc:
        return _error(401, exc)
    except Forbidden as exc:
        return _error(403, exc)
    reloaded = await models_admin.reload_models(services.db, services.broker, actor)
    return JSONResponse(
        {"status": reloaded.status, "message": reloaded.message, "models": reloaded.models}
    )


routes = [Route("/api/v1/admin/models/reload", reload_models, methods=["POST"])]
