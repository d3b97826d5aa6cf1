"""Who is calling: an API key (``Authorization: Bearer`` or ``X-API-Key``) or nobody.

With ``PIXTOOLS_AUTH=off`` every caller is the one owner ``anonymous``; admin routes
still need an admin key. A key sees only its own jobs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler

from pixtools.services import Services

ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's id as owner (or ``anonymous``), and whether it is an admin key."""

    owner: str
    admin: bool = False
    authenticated: bool = False


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The API key in ``Authorization: Bearer ...`` or ``X-API-Key`` (lower-case names)."""
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return headers.get("x-api-key") or None


async def resolve_principal(
    request: ASGIConnection[Any, Any, Any, Any], services: Services
) -> Principal:
    """The caller, cached on the request (the rate limiter resolves it first)."""
    cached = request.scope.get("state", {}).get("principal")
    if isinstance(cached, Principal):
        return cached
    secret = presented_key(request.headers)
    principal: Principal
    if secret:
        key = await services.keys.verify(secret)
        if key is None:
            raise NotAuthorizedException(
                detail="invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"}
            )
        principal = Principal(owner=key.id, admin=key.admin, authenticated=True)
    elif services.settings.auth == "required":
        raise NotAuthorizedException(
            detail="an API key is required", headers={"WWW-Authenticate": "Bearer"}
        )
    else:
        principal = Principal(owner=ANONYMOUS)
    request.state.principal = principal
    return principal


async def provide_principal(
    request: Request[Any, Any, Any], services: NamedDependency[Services]
) -> Principal:
    """The ``principal`` dependency: the caller, or 401."""
    return await resolve_principal(request, services)


async def provide_admin(
    request: Request[Any, Any, Any], services: NamedDependency[Services]
) -> Principal:
    """The ``admin`` dependency: an admin caller, or 401/403."""
    return await _admin(request, services)


async def _admin(connection: ASGIConnection[Any, Any, Any, Any], services: Services) -> Principal:
    principal = await resolve_principal(connection, services)
    if not principal.authenticated:
        raise NotAuthorizedException(
            detail="an admin API key is required", headers={"WWW-Authenticate": "Bearer"}
        )
    if not principal.admin:
        raise PermissionDeniedException(detail="this API key is not an admin key")
    return principal


# Guards run before Litestar parses a route's parameters and body, so a caller without the
# right key gets 401/403 whatever else is wrong with the request (not a 400 that tells an
# anonymous caller how the route validates its input).


async def authenticated(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard: the caller is known (or auth is off) before anything else is looked at."""
    if connection.scope.get("method") != "OPTIONS":  # Allow is no secret; it needs no key
        await resolve_principal(connection, connection.app.state.services)


async def admin_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: an admin key, checked before the route's parameters are validated."""
    if connection.scope.get("method") != "OPTIONS":
        await _admin(connection, connection.app.state.services)


# Handler parameters filled by the app's dependency providers (create_app wires them).
ServicesDep = NamedDependency[Services]
PrincipalDep = NamedDependency[Principal]
