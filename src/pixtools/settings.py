"""Configuration: one Struct, every setting declared once with its default and doc.

Values come from ``PIXTOOLS_*`` environment variables; unset means the embedded default.
``Settings.from_env()`` validates everything at start and raises ``SettingsError`` with one
line naming the variable, so a bad deployment stops at once instead of failing later.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec

from pixtools.jobspec.queues import QUEUES

PREFIX = "PIXTOOLS_"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _doc(text: str, **meta: Any) -> Any:
    return msgspec.Meta(description=text, **meta)


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every setting of PixTools. The field ``x`` is read from ``PIXTOOLS_X``."""

    data_dir: Annotated[
        str,
        _doc(
            "folder for the embedded SQLite file and local object store; a relative path is "
            "made absolute from the folder of the start (and logged)"
        ),
    ] = ".pixtools"
    database_url: Annotated[
        str, _doc("SQLAlchemy URL (postgresql+asyncpg://...); empty: SQLite in data_dir")
    ] = ""
    redis_url: Annotated[str, _doc("redis://host:port/db; empty: in-process cache")] = ""
    rabbitmq_url: Annotated[str, _doc("amqp://user:pass@host:5672/vhost; empty: in-process")] = ""
    s3_bucket: Annotated[str, _doc("images bucket; empty: the local folder storage_dir")] = ""
    s3_endpoint_url: Annotated[str, _doc("any S3 API endpoint (tests: a local server)")] = ""
    s3_region: Annotated[str, _doc("AWS region of the bucket")] = "us-east-1"
    storage_dir: Annotated[str, _doc("local object store folder; empty: data_dir/objects")] = ""
    auth: Annotated[Literal["off", "required"], _doc("API keys required or not")] = "off"
    cors_origin: Annotated[str, _doc("the one origin allowed by CORS (scheme://host[:port])")] = ""
    max_upload_bytes: Annotated[int, _doc("largest accepted source", ge=1024)] = 25 * 1024 * 1024
    max_pixels: Annotated[int, _doc("largest accepted source in pixels", ge=1)] = 50_000_000
    render_memory_mb: Annotated[
        int,
        _doc(
            "memory the renders of one worker process may hold at once (estimated per output "
            "before it decodes; more wait their turn)",
            ge=64,
        ),
    ] = 1536
    webhook_secret: Annotated[str, _doc("HMAC-SHA256 key for webhook signatures")] = ""
    webhook_allow_private: Annotated[bool, _doc("allow webhooks to private addresses")] = False
    webhook_cb_fail_threshold: Annotated[int, _doc("failures that open the breaker", ge=1)] = 5
    webhook_cb_reset_timeout: Annotated[float, _doc("seconds until half-open", gt=0)] = 60.0
    webhook_max_attempts: Annotated[int, _doc("delivery attempts per webhook", ge=1, le=50)] = 8
    webhook_backoff_base: Annotated[float, _doc("first retry delay, seconds", gt=0)] = 1.0
    webhook_backoff_cap: Annotated[float, _doc("longest retry delay, seconds", gt=0)] = 300.0
    webhook_timeout: Annotated[float, _doc("seconds per delivery attempt", gt=0)] = 10.0
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], _doc("log level")
    ] = "INFO"
    log_format: Annotated[
        Literal["auto", "json", "text"],
        _doc("log lines: json, text (human-readable), auto: text on a terminal, else json"),
    ] = "auto"
    rate_limit_per_minute: Annotated[int, _doc("requests per key or client per minute", ge=0)] = 600
    trusted_proxies: Annotated[
        str,
        _doc(
            "comma-separated addresses/CIDRs of the proxies whose X-Forwarded-For is believed "
            "(the client is the last address not in them); empty: none, the peer is the client"
        ),
    ] = ""
    upload_concurrency: Annotated[
        int, _doc("job submissions one API process reads at once", ge=1)
    ] = 8
    upload_wait_seconds: Annotated[
        float, _doc("how long a submission waits for a free slot before 503", ge=0)
    ] = 10.0
    header_timeout: Annotated[
        float, _doc("seconds a client has to send a request's headers (uvicorn)", gt=0)
    ] = 10.0
    body_timeout: Annotated[
        float, _doc("seconds a client has to send a whole request body (408 after)", gt=0)
    ] = 120.0
    body_idle_timeout: Annotated[
        float, _doc("longest pause in a request body before 408, seconds", gt=0)
    ] = 15.0
    output_max_attempts: Annotated[int, _doc("tries of one output before it fails", ge=1)] = 3
    heartbeat_seconds: Annotated[float, _doc("how often a working output is touched", gt=0)] = 5.0
    stale_after_seconds: Annotated[float, _doc("heartbeat age that marks work stale", gt=0)] = 60.0
    outbox_poll_seconds: Annotated[float, _doc("relay safety-net poll interval", gt=0)] = 2.0
    presign_seconds: Annotated[int, _doc("lifetime of presigned download URLs", ge=1)] = 900
    retention_hours: Annotated[float, _doc("age after which cleanup removes jobs", gt=0)] = 24.0
    worker_threads: Annotated[int, _doc("embedded-mode worker threads", ge=1, le=64)] = 4
    ml_threads: Annotated[
        int, _doc("onnxruntime intra-op threads per ML worker; 0: the usable CPUs", ge=0, le=256)
    ] = 0
    worker_queues: Annotated[
        str,
        _doc(
            "queues a worker process consumes, comma-separated (`pixtools worker --queues` "
            "sets it); with ml, the ML models load when the process starts"
        ),
    ] = ""
    worker_nice: Annotated[
        int, _doc("CPU niceness of worker processes, so the API stays responsive", ge=0, le=19)
    ] = 10
    migrate: Annotated[
        Literal["auto", "on", "off"],
        _doc("apply the database migrations when the API starts; auto: in embedded mode only"),
    ] = "auto"
    url_sources: Annotated[
        bool,
        _doc('jobs may name their source by URL ({"source": {"url": ...}}), fetched by the worker'),
    ] = False
    url_source_hosts: Annotated[
        str,
        _doc(
            "comma-separated hosts URL sources may name; `*.example.com` allows its subdomains; "
            "empty: none"
        ),
    ] = ""
    url_source_allow_private: Annotated[
        bool, _doc("allow URL sources at private addresses (tests, trusted networks)")
    ] = False
    url_source_timeout: Annotated[float, _doc("seconds to fetch a URL source", gt=0)] = 30.0
    worker_metrics_port: Annotated[
        int, _doc("port of a worker pool's Prometheus /metrics; 0: not served", ge=0, le=65535)
    ] = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build from ``PIXTOOLS_*`` variables; ``SettingsError`` names the bad variable."""
        env = os.environ if environ is None else environ
        raw: dict[str, Any] = {}
        for name in cls.__struct_fields__:
            value = env.get(PREFIX + name.upper())
            if value is not None and value != "":
                raw[name] = value
        try:
            settings = msgspec.convert(raw, type=cls, strict=False)
        except msgspec.ValidationError as exc:
            raise SettingsError(_variable_message(str(exc))) from None
        settings._check_urls()
        if unknown := [q for q in settings.consumed_queues if q not in QUEUES]:
            raise SettingsError(
                f"{PREFIX}WORKER_QUEUES: {', '.join(unknown)} is not a queue "
                f"(the queues: {', '.join(QUEUES)})"
            )
        try:
            settings.trusted_networks  # noqa: B018 - parsing is the check
        except ValueError as exc:
            raise SettingsError(f"{PREFIX}TRUSTED_PROXIES: {exc}") from None
        return settings

    def _check_urls(self) -> None:
        checks = (
            ("database_url", ("postgresql+asyncpg", "sqlite+aiosqlite")),
            ("redis_url", ("redis", "rediss", "unix")),
            ("rabbitmq_url", ("amqp", "amqps")),
            ("s3_endpoint_url", ("http", "https")),
            ("cors_origin", ("http", "https")),
        )
        for name, schemes in checks:
            value = getattr(self, name)
            if value and urlsplit(value).scheme not in schemes:
                raise SettingsError(
                    f"{PREFIX}{name.upper()}: scheme must be one of {', '.join(schemes)}"
                )

    @property
    def trusted_networks(self) -> tuple[IPNetwork, ...]:
        """``trusted_proxies`` parsed (a bare address is its own one-address network)."""
        return tuple(
            ipaddress.ip_network(item.strip(), strict=False)
            for item in self.trusted_proxies.split(",")
            if item.strip()
        )

    def url_host_allowed(self, host: str) -> bool:
        """Is ``host`` on ``url_source_hosts`` (exactly, or under a ``*.`` entry)?"""
        host = host.lower().rstrip(".")
        for item in self.url_source_hosts.split(","):
            allowed = item.strip().lower().rstrip(".")
            if not allowed:
                continue
            if allowed.startswith("*."):
                if host.endswith(allowed[1:]):
                    return True
            elif host == allowed:
                return True
        return False

    @property
    def embedded(self) -> bool:
        """True when no broker is configured: workers run inside the API process."""
        return not self.rabbitmq_url

    @property
    def runs_migrations(self) -> bool:
        """Whether the API applies the database migrations when it starts."""
        return self.embedded if self.migrate == "auto" else self.migrate == "on"

    @property
    def consumed_queues(self) -> tuple[str, ...]:
        """``worker_queues`` as names."""
        return tuple(q for q in self.worker_queues.replace(",", " ").split() if q)

    @property
    def effective_database_url(self) -> str:
        """The database URL; the SQLite file in the data folder when none is set."""
        if self.database_url:
            return self.database_url
        path = Path(self.data_dir).resolve() / "pixtools.db"
        return f"sqlite+aiosqlite:///{path}"

    @property
    def effective_storage_dir(self) -> Path:
        """The local object store's folder (``storage_dir``, or ``objects`` in the data folder)."""
        return Path(self.storage_dir or Path(self.data_dir) / "objects").resolve()


class SettingsError(ValueError):
    """A configuration value that cannot be used; the message names the variable."""


def _variable_message(text: str) -> str:
    # msgspec: "Expected `int`, got `str` - at `$.max_pixels`"
    msg, _, where = text.partition(" - at `$.")
    field = where.rstrip("`")
    if field:
        return f"{PREFIX}{field.upper()}: {msg}"
    return text


def settings_table() -> list[tuple[str, str, str]]:
    """(variable, default, description) rows for the configuration docs."""
    rows = []
    info = msgspec.inspect.type_info(Settings)
    assert isinstance(info, msgspec.inspect.StructType)
    for f in info.fields:
        desc = ""
        if isinstance(f.type, msgspec.inspect.Metadata):
            desc = str((f.type.extra_json_schema or {}).get("description", ""))
        default = "" if f.default is msgspec.NODEFAULT else repr(f.default)
        rows.append((PREFIX + f.name.upper(), default, desc))
    return rows


def settings_markdown() -> str:
    """The table of docs/configuration.md (a test keeps the doc equal to this)."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    lines += [f"| `{name}` | `{default}` | {desc} |" for name, default, desc in settings_table()]
    return "\n".join(lines) + "\n"
