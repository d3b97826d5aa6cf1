"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), working offline.

Litestar's own pages load their JavaScript, CSS and fonts from CDNs and start Swagger UI
with an inline script, so without internet (or under our CSP) they are blank. These pages
load everything from this API: the UI bundles come from the ``fastapi-offline`` package
(only its static files are used; nothing of it is imported), our start-up script from
``docs_static/``, both served under ``/docs-assets/``. No web fonts are fetched: both UIs
fall back to the system's sans-serif. ReDoc's bundle draws the Redocly logo from its CDN
whatever its options; it is served with that one URL made an empty ``data:`` URL, so the
image fails at once, without a request, and ReDoc's own error handler hides it.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from litestar import MediaType, Response, Router, get, route
from litestar.static_files import create_static_files_router

OUR_ASSETS = Path(__file__).with_name("docs_static")
ASSETS_PATH = "/docs-assets"
REDOC_BUNDLE = "redoc.standalone.js"
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


def bundled_assets() -> Path:
    """The folder of Swagger UI and ReDoc builds shipped by ``fastapi-offline``.

    Found without importing the package (which would import FastAPI).
    """
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the fastapi-offline package (Swagger UI and ReDoc assets) is missing")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


SWAGGER_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>PixTools API</title>
<link rel="icon" href="{ASSETS_PATH}/favicon.png">
<link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
<script src="{ASSETS_PATH}/swagger-init.js"></script>
</body>
</html>
"""

REDOC_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>PixTools API</title>
<link rel="icon" href="{ASSETS_PATH}/favicon.png">
</head>
<body>
<redoc spec-url="/openapi.json"></redoc>
<script src="{ASSETS_PATH}/redoc.standalone.js"></script>
</body>
</html>
"""


@functools.cache
def redoc_bundle() -> bytes:
    """ReDoc's bundle with the one URL it loads from a CDN emptied (read once)."""
    return (bundled_assets() / REDOC_BUNDLE).read_bytes().replace(REDOC_LOGO, b"data:,")


@route(f"{ASSETS_PATH}/{REDOC_BUNDLE}", http_method=["GET", "HEAD"], include_in_schema=False)
async def redoc_script() -> Response[bytes]:
    """ReDoc's bundle, offline."""
    return Response(
        redoc_bundle(),
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@get("/docs", include_in_schema=False, media_type=MediaType.HTML)
async def swagger_page() -> Response[str]:
    """Swagger UI over ``/openapi.json``."""
    return Response(SWAGGER_PAGE, media_type=MediaType.HTML)


@get("/redoc", include_in_schema=False, media_type=MediaType.HTML)
async def redoc_page() -> Response[str]:
    """ReDoc over ``/openapi.json``."""
    return Response(REDOC_PAGE, media_type=MediaType.HTML)


def docs_router() -> Router:
    """The two pages and their assets."""
    assets = create_static_files_router(
        path=ASSETS_PATH, directories=[OUR_ASSETS, bundled_assets()], include_in_schema=False
    )
    return Router(path="/", route_handlers=[swagger_page, redoc_page, redoc_script, assets])
