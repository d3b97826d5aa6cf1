"""Factory for ``uvicorn --factory`` when the API runs several worker processes."""

from __future__ import annotations

from litestar import Litestar

from pixtools.api.app import create_app
from pixtools.api.serving import configure_protocols
from pixtools.observability.logs import configure_logging
from pixtools.observability.tracing import configure_tracing
from pixtools.settings import Settings


def app_from_env() -> Litestar:
    """The app configured from the environment, with this process's logging and tracing."""
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    configure_tracing("pixtools-api")
    configure_protocols(settings)  # this worker process's copy of the headers' deadline
    return create_app(settings)
