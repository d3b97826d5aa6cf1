"""The ``pixtools`` command line (docs/api.md, "Command line")."""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pixtools.jobspec.queues import ML, QUEUES, STANDARD
from pixtools.settings import Settings, SettingsError

if TYPE_CHECKING:
    from pixtools.maintenance.deadletters import DeadLetters

T = TypeVar("T")


def _settings() -> Settings:
    """The settings, with ``data_dir`` made absolute (and exported, so that child processes
    started from here agree on it whatever their working folder)."""
    import msgspec

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"pixtools: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    data_dir = str(Path(settings.data_dir).expanduser().resolve())
    os.environ["PIXTOOLS_DATA_DIR"] = data_dir
    return msgspec.structs.replace(settings, data_dir=data_dir)


def _say_local_paths(settings: Settings) -> None:
    """Say where local state lives (absolute), when any does."""
    if not settings.database_url:
        print(f"database: {settings.effective_database_url}", flush=True)
    if not settings.s3_bucket:
        note = "" if settings.embedded else " (the API and every worker must share this folder)"
        print(f"object store: local folder {settings.effective_storage_dir}{note}", flush=True)


def _database_problem(settings: Settings) -> str | None:
    """One line saying why the configured database cannot be used, or None."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    from pixtools.store.database import Database

    async def probe() -> str | None:
        db = Database(settings.effective_database_url, pool_size=1)
        try:
            async with db.engine.connect() as conn:
                try:
                    await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                except DBAPIError:
                    return "it has no PixTools tables (run `pixtools migrate`)"
        except Exception as exc:
            detail = getattr(exc, "orig", None) or exc
            return (str(detail).strip() or type(detail).__name__).splitlines()[0][:300]
        finally:
            await db.dispose()
        return None

    problem = asyncio.run(asyncio.wait_for(probe(), 30))
    if problem is None:
        return None
    where = make_url(settings.effective_database_url).render_as_string(hide_password=True)
    return f"cannot use the database {where}: {problem}"


class CliError(Exception):
    """An ordinary mistake (a missing file, an unknown id): one line on stderr, no traceback."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


ML_INSTALL_HINT = (
    "install the ml extra: pip install 'pixtools[ml]' (from a checkout: "
    "pip install -e '.[ml]' && bash scripts/install-ml.sh .venv)"
)


def missing_ml_module() -> str | None:
    """The name of the first ML dependency this Python cannot import, or None."""
    for module in ("numpy", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            return module
    return None


def _read_file(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise CliError(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise CliError(f"{what} {path}: is a folder, not a file") from None
    except PermissionError:
        raise CliError(f"{what} {path}: permission denied") from None


def _make_folder(path: Path, what: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise CliError(f"{what} {path}: is a file, not a folder") from None
    except OSError as exc:
        raise CliError(f"{what} {path}: {exc.strerror or exc}") from None


def _spec_text(arg: str) -> bytes:
    """``--spec`` is inline JSON when it starts with ``{`` (or ``[``, refused as not an
    object), else a path to a JSON file."""
    if arg.lstrip().startswith(("{", "[")):
        return arg.encode()
    return _read_file(arg, "spec file")


def _run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro_fn()

    return asyncio.run(main())


def _unreachable_is_one_line(fn: Callable[[], T]) -> T:
    """Run ``fn``; a broker or database that cannot be reached is a CliError (one line)."""
    import dramatiq.errors
    import pika.exceptions
    from sqlalchemy.exc import DBAPIError

    # Dramatiq 2 renamed ConnectionError (the old name warns when touched); 1.x has only it.
    broker_down = (
        getattr(dramatiq.errors, "BrokerConnectionError", None) or dramatiq.errors.ConnectionError
    )
    try:
        return fn()
    except (pika.exceptions.AMQPConnectionError, broker_down) as exc:
        raise CliError(f"cannot reach the broker: {exc!r}", code=1) from None
    except (OSError, DBAPIError) as exc:
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]  # the driver's words
        if "no such table" in detail or ("relation" in detail and "does not exist" in detail):
            detail += " (run `pixtools migrate` first)"
        raise CliError(f"cannot use the database: {detail}", code=1) from None


def cmd_dev(args: argparse.Namespace) -> int:
    """Everything in one process on embedded defaults."""
    from pixtools.embedded import dev_settings

    settings = dev_settings(_settings(), say=functools.partial(print, flush=True))
    return _serve(settings, args.host, args.port, workers=1)


def cmd_api(args: argparse.Namespace) -> int:
    """Serve the API on the configured services; a database that cannot be used stops it at once."""
    settings = _settings()
    if settings.database_url and (problem := _database_problem(settings)) is not None:
        # Fail at once, before "startup complete": not an API that answers 500s.
        print(f"pixtools api: {problem}", file=sys.stderr)
        return 2
    return _serve(settings, args.host, args.port, workers=args.workers)


def _serve(settings: Settings, host: str, port: int, *, workers: int) -> int:
    import uvicorn

    from pixtools.api.app import create_app
    from pixtools.api.serving import uvicorn_options
    from pixtools.observability.logs import configure_logging
    from pixtools.observability.tracing import configure_tracing

    configure_logging(settings.log_level, settings.log_format)
    configure_tracing("pixtools-api")
    mode = (
        "embedded: SQLite, local folder store, in-process broker and workers"
        if settings.embedded
        else "services"
    )
    print(f"PixTools on http://{host}:{port}/  (docs: /docs; {mode})", flush=True)
    _say_local_paths(settings)
    if workers > 1:
        # Each uvicorn worker builds its own app (and relay) from the settings.
        uvicorn.run(
            "pixtools.api.entry:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            **uvicorn_options(settings),
        )
        return 0
    app = create_app(settings)
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
    bad = [q for q in queues if q not in QUEUES]
    if bad or not queues:
        print(
            f"pixtools worker: --queues must name {STANDARD} and/or {ML}, not {bad}",
            file=sys.stderr,
        )
        return 2
    if ML in queues and (missing := missing_ml_module()) is not None:
        print(
            f"pixtools worker: the ml queue needs {missing}, which is not installed; "
            + ML_INSTALL_HINT,
            file=sys.stderr,
        )
        return 2
    if (problem := _database_problem(settings)) is not None:
        # As `pixtools api`: refuse at once, not consume messages that cannot be claimed.
        print(f"pixtools worker: {problem}", file=sys.stderr)
        return 2
    _wait_for_broker(settings)
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
    _say_local_paths(settings)
    os.environ["PIXTOOLS_WORKER_QUEUES"] = ",".join(queues)  # Settings.worker_queues
    if settings.worker_metrics_port:
        from pixtools.worker.metrics import prepare_multiprocess_dir

        prepare_multiprocess_dir(os.environ)  # before Dramatiq and its processes start
    os.execv(sys.executable, argv)  # noqa: S606
    return 0  # pragma: no cover


def _wait_for_broker(settings: Settings) -> None:
    """Wait until the broker accepts a connection, one log line per failed attempt (by the
    project's backoff, as long as it takes: a broker that starts after its workers is normal in
    a cluster). A refused login or a missing vhost is a CliError (exit 1): retrying cannot fix
    it. SIGTERM while waiting ends the process with 0, as it ends a running worker."""
    import signal
    import threading

    from pixtools.messaging.brokerlog import BrokerConfigError, wait_for_broker
    from pixtools.observability.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if not wait_for_broker(settings.rabbitmq_url, stop):
            raise SystemExit(0)
    except BrokerConfigError as exc:
        raise CliError(str(exc), code=1) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_migrate(args: argparse.Namespace) -> int:
    """Migrate the database to ``revision``."""
    from alembic.util.exc import CommandError

    from pixtools.store.migrate import upgrade

    settings = _settings()
    if not settings.database_url:
        _make_folder(Path(settings.data_dir), "data folder")
    try:
        _unreachable_is_one_line(lambda: upgrade(settings.effective_database_url, args.revision))
    except CommandError as exc:  # e.g. a revision that does not exist
        raise CliError(f"revision {args.revision}: {exc}") from None
    print(f"database at {args.revision}")
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:  # noqa: ARG001  every subcommand takes the parsed arguments
    """One reconciliation pass; prints its report as JSON."""
    from pixtools.maintenance.reconcile import reconcile_once

    settings = _settings()
    report = _unreachable_is_one_line(lambda: _run(lambda: reconcile_once(settings)))
    print(json.dumps(report))
    return 0


def cmd_cleanup(args: argparse.Namespace) -> int:  # noqa: ARG001  every subcommand takes the parsed arguments
    """One cleanup pass; prints its report as JSON."""
    from pixtools.maintenance.cleanup import cleanup_once

    settings = _settings()
    report = _unreachable_is_one_line(lambda: _run(lambda: cleanup_once(settings)))
    print(json.dumps(report))
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    """Create, list or revoke API keys."""
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
                    print(f"pixtools keys revoke: no active key {args.key_id}", file=sys.stderr)
                    return 1
                print(f"revoked {args.key_id}")
            return 0
        finally:
            await services.close()

    return _unreachable_is_one_line(lambda: asyncio.run(go()))


def cmd_dlq(args: argparse.Namespace) -> int:
    """List, replay or purge dead letters."""
    from pixtools.maintenance import deadletters

    settings = _settings()
    if not settings.rabbitmq_url:
        print("pixtools dlq: needs PIXTOOLS_RABBITMQ_URL", file=sys.stderr)
        return 2
    dlq = deadletters.DeadLetters(settings.rabbitmq_url)
    return _unreachable_is_one_line(lambda: _dlq(args, dlq))


def _dlq(args: argparse.Namespace, dlq: DeadLetters) -> int:
    if args.dlq_cmd == "list":
        for m in dlq.browse(args.queue, limit=args.limit):
            print(json.dumps(m))
    elif args.dlq_cmd == "replay":
        ids = None if args.all else args.message_ids
        if not ids and not args.all:
            print("pixtools dlq replay: give message ids or --all", file=sys.stderr)
            return 2
        replayed = dlq.replay(args.queue, ids)
        print(json.dumps({"replayed": replayed}))
        if ids and replayed < len(set(ids)):
            print(
                f"pixtools dlq replay: {len(set(ids)) - replayed} of the given ids are not in the "
                f"{args.queue} dead-letter queue (see `pixtools dlq list --queue {args.queue}`)",
                file=sys.stderr,
            )
            return 1
    else:
        print(json.dumps({"purged": dlq.purge(args.queue)}))
    return 0


def cmd_process(args: argparse.Namespace) -> int:
    """Run a spec on a local file: no service, no database, no broker."""
    from pixtools.imaging import ImageError, probe, render_output
    from pixtools.jobspec.job import SpecError, parse_spec
    from pixtools.jobspec.ops import op_of

    settings = _settings()
    source = _read_file(args.file, "image")
    try:
        spec = parse_spec(_spec_text(args.spec))
    except SpecError as exc:
        where = "" if exc.field in ("", "spec") else f" {exc.field}"
        print(f"pixtools process: spec{where}: {exc.message}", file=sys.stderr)
        return 2
    ml_steps = [
        f"outputs[{i}].steps[{j}] ({op_of(step).name})"
        for i, out in enumerate(spec.outputs)
        for j, step in enumerate(out.steps)
        if op_of(step).queue == ML
    ]
    if ml_steps and (missing := missing_ml_module()) is not None:
        raise CliError(
            f"{ml_steps[0]} is an ML op and needs {missing}, which is not installed; "
            + ML_INSTALL_HINT
        )
    try:
        info = probe(source, max_pixels=settings.max_pixels)
    except ImageError as exc:
        print(f"pixtools process: {args.file}: {exc}", file=sys.stderr)
        return 2
    out_dir = Path(args.out)
    _make_folder(out_dir, "output folder")
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
            try:
                path.write_bytes(rendered.data)
            except OSError as exc:
                raise CliError(f"cannot write {path}: {exc.strerror or exc}", code=1) from None
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


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default (when it has one worth showing: not for a
    required option, a flag, or an option whose absence means nothing)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.required or action.default in (None, False, argparse.SUPPRESS):
            return action.help
        return super()._get_help_string(action)


def _sub(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, text: str
) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=text, description=text, formatter_class=_Help)


def _listen_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8000, help="TCP port to listen on")


def build_parser() -> argparse.ArgumentParser:
    """The ``pixtools`` command line and its subcommands."""
    from pixtools import __version__

    p = argparse.ArgumentParser(
        prog="pixtools",
        description="PixTools image-processing service. Configuration comes from PIXTOOLS_* "
        "environment variables (docs/configuration.md); none set means embedded mode.",
        formatter_class=_Help,
    )
    p.add_argument("--version", action="version", version=f"pixtools {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = _sub(
        sub,
        "dev",
        "everything in one process on embedded defaults (SQLite and a folder store in "
        "$PIXTOOLS_DATA_DIR, an in-process broker and workers)",
    )
    _listen_options(dev)
    dev.set_defaults(fn=cmd_dev)

    api = _sub(sub, "api", "the HTTP API and the outbox relay (services mode)")
    _listen_options(api)
    api.add_argument(
        "--workers", type=int, default=1, help="uvicorn worker processes serving the API"
    )
    api.set_defaults(fn=cmd_api)

    worker = _sub(
        sub,
        "worker",
        "Dramatiq workers for the given queues (services mode; they also run the periodic "
        "reconciliation pass)",
    )
    worker.add_argument(
        "--queues",
        required=True,
        help="standard, ml or both (comma- or space-separated); ml needs the ml extra",
    )
    worker.add_argument("--processes", type=int, default=1, help="worker processes")
    worker.add_argument("--threads", type=int, default=5, help="worker threads per process")
    worker.add_argument(
        "--shutdown-timeout",
        type=float,
        # Dramatiq's own variable (milliseconds) sets the default, as the manifests do.
        default=float(os.environ.get("dramatiq_worker_shutdown_timeout", "90000")) / 1000,  # noqa: SIM112
        help="seconds to finish in-flight work on SIGTERM (90 fits a spot's 2-minute "
        "notice; $dramatiq_worker_shutdown_timeout in ms overrides it)",
    )
    worker.set_defaults(fn=cmd_worker)

    migrate = _sub(sub, "migrate", "alembic upgrade of the configured database")
    migrate.add_argument("--revision", default="head", help="the revision to upgrade to")
    migrate.set_defaults(fn=cmd_migrate)

    _sub(
        sub,
        "reconcile",
        "one reconciliation pass now (stale work, forgotten jobs, a broker that lost its "
        "queues, unsent outbox rows); the workers run it themselves too",
    ).set_defaults(fn=cmd_reconcile)
    _sub(
        sub, "cleanup", "one pass of expiry of jobs, their stored objects and old outbox rows"
    ).set_defaults(fn=cmd_cleanup)

    dlq = _sub(sub, "dlq", "dead-letter queue operations (services mode)")
    dsub = dlq.add_subparsers(dest="dlq_cmd", required=True, metavar="ACTION")
    queue_help = "the work queue whose dead letters to use"
    dl = _sub(dsub, "list", "print the dead letters of a queue as JSON lines")
    dl.add_argument("--queue", required=True, choices=QUEUES, help=queue_help)
    dl.add_argument("--limit", type=int, default=50, help="most messages to print")
    dr = _sub(dsub, "replay", "send dead letters back to their queue")
    dr.add_argument("--queue", required=True, choices=QUEUES, help=queue_help)
    dr.add_argument("--all", action="store_true", help="replay every dead letter of the queue")
    dr.add_argument(
        "message_ids", nargs="*", help="ids of the messages to replay (from `dlq list`)"
    )
    dp = _sub(dsub, "purge", "delete every dead letter of a queue")
    dp.add_argument("--queue", required=True, choices=QUEUES, help=queue_help)
    dlq.set_defaults(fn=cmd_dlq)

    keys = _sub(sub, "keys", "API keys (used when PIXTOOLS_AUTH=required)")
    ksub = keys.add_subparsers(dest="keys_cmd", required=True, metavar="ACTION")
    kc = _sub(ksub, "create", "create a key and print its secret once")
    kc.add_argument("name", help="a label for the key (who or what uses it)")
    kc.add_argument("--admin", action="store_true", help="the key may use the admin routes")
    _sub(ksub, "list", "print every key: id, name, role, state, creation time")
    kr = _sub(ksub, "revoke", "revoke a key at once")
    kr.add_argument("key_id", help="the key's id (from `keys list`)")
    keys.set_defaults(fn=cmd_keys)

    proc = _sub(sub, "process", "run a spec on a local image without any service")
    proc.add_argument("file", help="the source image")
    proc.add_argument(
        "--spec",
        required=True,
        help="the job spec: inline JSON (starting with '{') or the path of a JSON file",
    )
    proc.add_argument("--out", default=".", help="folder to write the outputs into")
    proc.set_defaults(fn=cmd_process)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; a ``CliError`` becomes one line on stderr and exit status 2."""
    args = build_parser().parse_args(argv)
    fn: Callable[[argparse.Namespace], int] = args.fn
    try:
        return fn(args)
    except CliError as exc:
        print(f"pixtools {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
