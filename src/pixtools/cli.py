"""The ``pixtools`` command line (CONTRACT section 4)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pixtools.settings import Settings, SettingsError

T = TypeVar("T")


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        print(f"pixtools: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro_fn()

    return asyncio.run(main())


def cmd_dev(args: argparse.Namespace) -> int:
    """Everything in one process on embedded defaults."""
    import msgspec

    settings = _settings()
    if settings.rabbitmq_url:
        print("pixtools dev: ignoring PIXTOOLS_RABBITMQ_URL; `pixtools dev` always runs embedded")
        settings = msgspec.structs.replace(settings, rabbitmq_url="")
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    if not settings.webhook_secret:
        settings = msgspec.structs.replace(settings, webhook_secret=_dev_webhook_secret(settings))
    return _serve(settings, args.host, args.port, workers=1, migrate=True)


def _dev_webhook_secret(settings: Settings) -> str:
    """Embedded mode signs webhooks with a secret made once and kept in the data folder."""
    import secrets

    path = Path(settings.data_dir) / "webhook-secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
        print(f"webhook signing secret written to {path.resolve()}")
    return path.read_text().strip()


def cmd_api(args: argparse.Namespace) -> int:
    settings = _settings()
    return _serve(settings, args.host, args.port, workers=args.workers, migrate=settings.embedded)


def _serve(settings: Settings, host: str, port: int, *, workers: int, migrate: bool) -> int:
    import uvicorn

    from pixtools.api.app import create_app
    from pixtools.api.serving import uvicorn_options
    from pixtools.observability.logs import configure_logging
    from pixtools.observability.tracing import configure_tracing

    configure_logging(settings.log_level)
    configure_tracing("pixtools-api")
    mode = (
        "embedded: SQLite, local folder store, in-process broker and workers"
        if settings.embedded
        else "services"
    )
    print(f"PixTools on http://{host}:{port}/  (docs: /docs; {mode})", flush=True)
    if workers > 1:
        # Each uvicorn worker builds its own app (and relay) from the environment.
        os.environ["PIXTOOLS__MIGRATE"] = "1" if migrate else "0"
        uvicorn.run(
            "pixtools.api.entry:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            **uvicorn_options(settings),
        )
        return 0
    app = create_app(settings, run_migrations=migrate)
    uvicorn.run(app, host=host, port=port, **uvicorn_options(settings))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Exec the Dramatiq CLI on our entry module, for the given queues."""
    settings = _settings()
    if not settings.rabbitmq_url:
        print(
            "pixtools worker: PIXTOOLS_RABBITMQ_URL is not set (embedded mode runs workers "
            "inside `pixtools dev`)",
            file=sys.stderr,
        )
        return 2
    if not settings.database_url:
        print("pixtools worker: PIXTOOLS_DATABASE_URL is not set", file=sys.stderr)
        return 2
    queues = [q for q in args.queues.replace(",", " ").split() if q]
    bad = [q for q in queues if q not in ("standard", "ml")]
    if bad or not queues:
        print(f"pixtools worker: --queues must name standard and/or ml, not {bad}", file=sys.stderr)
        return 2
    argv = [
        sys.executable,
        "-m",
        "dramatiq",
        "pixtools.worker.main",
        "--processes",
        str(args.processes),
        "--threads",
        str(args.threads),
        "--worker-shutdown-timeout",
        str(int(args.shutdown_timeout * 1000)),
        "--queues",
        *queues,
    ]
    os.environ["PIXTOOLS__WORKER_QUEUES"] = ",".join(queues)  # read by pixtools.worker.main
    if settings.worker_metrics_port:
        from pixtools.worker.metrics import prepare_multiprocess_dir

        prepare_multiprocess_dir(os.environ)  # before Dramatiq and its processes start
    os.execv(sys.executable, argv)  # noqa: S606
    return 0  # pragma: no cover


def cmd_migrate(args: argparse.Namespace) -> int:
    from pixtools.store.migrate import upgrade

    settings = _settings()
    if not settings.database_url:
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url, args.revision)
    print(f"database at {args.revision}")
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    from pixtools.maintenance.reconcile import reconcile_once

    settings = _settings()
    report = _run(lambda: reconcile_once(settings))
    print(json.dumps(report))
    return 0


def cmd_cleanup(args: argparse.Namespace) -> int:
    from pixtools.maintenance.cleanup import cleanup_once

    settings = _settings()
    report = _run(lambda: cleanup_once(settings))
    print(json.dumps(report))
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from pixtools.services import build_services
    from pixtools.store.keys import ApiKeyRepository

    settings = _settings()

    async def go() -> int:
        services = build_services(settings)
        try:
            repo = ApiKeyRepository(services.db)
            if args.keys_cmd == "create":
                key, secret = await repo.create(args.name, admin=args.admin)
                print(f"created key {key.id} ({key.name}{', admin' if key.admin else ''})")
                print(f"secret (shown once, store it now): {secret}")
            elif args.keys_cmd == "list":
                for k in await repo.all():
                    state = "revoked" if k.revoked_at else "active"
                    role = "admin" if k.admin else "user"
                    print(f"{k.id}\t{k.name}\t{role}\t{state}\t{k.created_at.isoformat()}")
            else:
                if not await repo.revoke(args.key_id):
                    print(f"no active key {args.key_id}", file=sys.stderr)
                    return 1
                print(f"revoked {args.key_id}")
            return 0
        finally:
            await services.close()

    return asyncio.run(go())


def cmd_dlq(args: argparse.Namespace) -> int:
    from pixtools.maintenance import deadletters

    settings = _settings()
    if not settings.rabbitmq_url:
        print("pixtools dlq: needs PIXTOOLS_RABBITMQ_URL", file=sys.stderr)
        return 2
    dlq = deadletters.DeadLetters(settings.rabbitmq_url)
    if args.dlq_cmd == "list":
        for m in dlq.browse(args.queue, limit=args.limit):
            print(json.dumps(m))
    elif args.dlq_cmd == "replay":
        ids = None if args.all else args.message_ids
        if not ids and not args.all:
            print("pixtools dlq replay: give message ids or --all", file=sys.stderr)
            return 2
        print(json.dumps({"replayed": dlq.replay(args.queue, ids)}))
    else:
        print(json.dumps({"purged": dlq.purge(args.queue)}))
    return 0


def cmd_process(args: argparse.Namespace) -> int:
    """Run a spec on a local file: no service, no database, no broker."""
    from pixtools.imaging import ImageError, probe, render_output
    from pixtools.spec.job import SpecError, parse_spec

    settings = _settings()
    source = Path(args.file).read_bytes()
    try:
        spec = parse_spec(Path(args.spec).read_bytes())
    except SpecError as exc:
        print(f"pixtools process: spec {exc}", file=sys.stderr)
        return 2
    try:
        info = probe(source, max_pixels=settings.max_pixels)
    except ImageError as exc:
        print(f"pixtools process: {args.file}: {exc}", file=sys.stderr)
        return 2
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    summary: dict[str, Any] = {
        "source": {"format": info.format, "width": info.width, "height": info.height},
        "outputs": {},
    }
    for output in spec.outputs:
        try:
            rendered = render_output(source, output.steps, max_pixels=settings.max_pixels)
        except ImageError as exc:
            failures += 1
            summary["outputs"][output.name] = {"status": "failed", "error": str(exc)}
            continue
        entry: dict[str, Any] = {"status": "succeeded", "result": rendered.result}
        if rendered.data is not None:
            path = out_dir / f"{output.name}.{rendered.extension}"
            path.write_bytes(rendered.data)
            entry.update(
                file=str(path),
                format=rendered.format,
                width=rendered.width,
                height=rendered.height,
                bytes=len(rendered.data),
            )
        summary["outputs"][output.name] = entry
    print(json.dumps(summary, indent=2, default=str))
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pixtools", description="PixTools image-processing service")
    sub = p.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="everything in one process on embedded defaults")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8000)
    dev.set_defaults(fn=cmd_dev)

    api = sub.add_parser("api", help="the HTTP API and the outbox relay")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument("--workers", type=int, default=1)
    api.set_defaults(fn=cmd_api)

    worker = sub.add_parser("worker", help="Dramatiq workers for the given queues")
    worker.add_argument("--queues", required=True, help="standard, ml or both")
    worker.add_argument("--processes", type=int, default=1)
    worker.add_argument("--threads", type=int, default=5)
    worker.add_argument(
        "--shutdown-timeout",
        type=float,
        # Dramatiq's own variable (milliseconds) sets the default, as the manifests do.
        default=float(os.environ.get("dramatiq_worker_shutdown_timeout", "90000")) / 1000,  # noqa: SIM112
        help="seconds to finish in-flight work on SIGTERM (default 90: fits a spot's "
        "2-minute notice; or $dramatiq_worker_shutdown_timeout in ms)",
    )
    worker.set_defaults(fn=cmd_worker)

    migrate = sub.add_parser("migrate", help="alembic upgrade head on the configured database")
    migrate.add_argument("--revision", default="head")
    migrate.set_defaults(fn=cmd_migrate)

    sub.add_parser(
        "reconcile", help="one pass of stale-job and outbox reconciliation"
    ).set_defaults(fn=cmd_reconcile)
    sub.add_parser(
        "cleanup", help="one pass of expiry of stored objects and old rows"
    ).set_defaults(fn=cmd_cleanup)

    dlq = sub.add_parser("dlq", help="dead-letter operations")
    dsub = dlq.add_subparsers(dest="dlq_cmd", required=True)
    dl = dsub.add_parser("list")
    dl.add_argument("--queue", required=True, choices=["standard", "ml"])
    dl.add_argument("--limit", type=int, default=50)
    dr = dsub.add_parser("replay")
    dr.add_argument("--queue", required=True, choices=["standard", "ml"])
    dr.add_argument("--all", action="store_true")
    dr.add_argument("message_ids", nargs="*")
    dp = dsub.add_parser("purge")
    dp.add_argument("--queue", required=True, choices=["standard", "ml"])
    dlq.set_defaults(fn=cmd_dlq)

    keys = sub.add_parser("keys", help="API keys")
    ksub = keys.add_subparsers(dest="keys_cmd", required=True)
    kc = ksub.add_parser("create")
    kc.add_argument("name")
    kc.add_argument("--admin", action="store_true")
    ksub.add_parser("list")
    kr = ksub.add_parser("revoke")
    kr.add_argument("key_id")
    keys.set_defaults(fn=cmd_keys)

    proc = sub.add_parser("process", help="run a spec on a local file without any service")
    proc.add_argument("file")
    proc.add_argument("--spec", required=True)
    proc.add_argument("--out", default=".")
    proc.set_defaults(fn=cmd_process)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    fn: Callable[[argparse.Namespace], int] = args.fn
    return fn(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
