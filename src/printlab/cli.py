"""The `printlab` command: set up, serve, manage staff and workstations, load demo data, migrate."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any

import click
from sqlalchemy.orm import Session

from printlab import config as config_module
from printlab.config import Config, ConfigError
from printlab.db import check_database, make_engine, safe_url, session_factory, upgrade
from printlab.logs import configure_logging
from printlab.services.errors import ServiceError
from printlab.services.exports.export import FORMATS as EXPORT_FORMATS
from printlab.services.exports.export import KINDS as EXPORT_KINDS
from printlab.services.files.storage import Storage, StorageError
from printlab.services.lab import staff as staff_service
from printlab.services.lab import workstations


def _friendly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn expected errors into one line on stderr and exit status 1, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ConfigError, ServiceError, StorageError) as exc:
            click.echo(f"printlab: {exc}", err=True)
            sys.exit(1)

    return wrapper


def _config(*, host: str | None = None, port: int | None = None) -> Config:
    """The settings, with a command's --host/--port in place of PRINTLAB_HOST/PRINTLAB_PORT (so that
    links follow them too)."""
    return config_module.load(
        PRINTLAB_HOST=host,  # type: ignore[arg-type]
        PRINTLAB_PORT=str(port) if port else None,  # type: ignore[arg-type]
    )


@contextmanager
def _session(settings: Config) -> Iterator[Session]:
    # The engine is disposed afterwards: a command must not leave pooled connections open behind it.
    engine = make_engine(settings.database_url)
    try:
        check_database(engine)
        with session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def _check_database(url: str) -> None:
    engine = make_engine(url)
    try:
        check_database(engine)
    finally:
        engine.dispose()


def _storage(settings: Config) -> Storage:
    storage = Storage(settings.storage_dir)
    if settings.embedded_storage:
        storage.ensure_folders()
    storage.check_writable()
    return storage


@click.group()
def main() -> None:
    """PrintLab: the 3D-print service of a makerspace."""


@main.command()
@_friendly
def init() -> None:
    """Create or upgrade the database and the storage folders."""
    settings = _config()
    _check_database(settings.database_url)
    upgrade(settings.database_url)
    storage = Storage(settings.storage_dir)
    storage.ensure_folders()
    storage.check_writable()
    click.echo(f"Database ready: {safe_url(settings.database_url)}")
    click.echo(f"Storage ready:  {storage.root}")


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@_friendly
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION."""
    settings = _config()
    _check_database(settings.database_url)
    upgrade(settings.database_url, revision)
    click.echo(f"Database at {revision}: {safe_url(settings.database_url)}")


@main.command()
@click.option("--host", default=None, help="Address to listen on (default PRINTLAB_HOST).")
@click.option("--port", default=None, type=int, help="Port (default PRINTLAB_PORT).")
@click.option("--threads", default=8, show_default=True, type=int)
@_friendly
def serve(host: str | None, port: int | None, threads: int, then_say: tuple[str, ...] = ()) -> None:
    """Serve PrintLab with waitress, a production WSGI server."""
    from printlab.web.app import create_app
    from printlab.web.serving import serve as serve_app

    settings = _config(host=host, port=port)
    app = create_app(config=settings)

    def listening() -> None:  # said once the port is ours, and last, so nothing pushes it off the screen
        click.echo(f"PrintLab is running at http://{settings.host}:{settings.port}/  (Ctrl+C stops it)")
        for line in then_say:
            click.echo(line)

    serve_app(app, host=settings.host, port=settings.port, threads=threads, when_listening=listening)


@main.group()
def staff() -> None:
    """Staff members (never deleted, only deactivated)."""


@staff.command("add")
@click.argument("name")
@_friendly
def staff_add(name: str) -> None:
    with _session(_config()) as session:
        member = staff_service.add_staff(session, name)
    click.echo(f"Added {member.name}.")


@staff.command("deactivate")
@click.argument("name")
@_friendly
def staff_deactivate(name: str) -> None:
    with _session(_config()) as session:
        staff_service.set_active(session, name, False)
    click.echo(f"{name} no longer appears in “Acting as”; their history is kept.")


@staff.command("reactivate")
@click.argument("name")
@_friendly
def staff_reactivate(name: str) -> None:
    with _session(_config()) as session:
        staff_service.set_active(session, name, True)
    click.echo(f"{name} is active again.")


@staff.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include deactivated staff.")
@_friendly
def staff_list(show_all: bool) -> None:
    with _session(_config()) as session:
        members = staff_service.list_staff(session, active_only=not show_all)
        for member in members:
            state = "active" if member.is_active else f"inactive since {member.deactivated_at:%Y-%m-%d}"
            click.echo(f"{member.name}\t{state}")


@main.group()
def workstation() -> None:
    """Lab computers and their shared passwords."""


@workstation.command("add")
@click.argument("workstation_id")
@click.option("--admin", is_flag=True, help="Allow this workstation into the admin pages.")
@click.option("--password", default=None, help="Use this password instead of generating one.")
@_friendly
def workstation_add(workstation_id: str, admin: bool, password: str | None) -> None:
    chosen = password or workstations.generate_password()
    with _session(_config()) as session:
        workstations.add_workstation(session, workstation_id, chosen, is_admin=admin)
    click.echo(f"Workstation {workstation_id} added{' (admin)' if admin else ''}.")
    if not password:
        click.echo(f"Password: {chosen}")


@workstation.command("reset-password")
@click.argument("workstation_id")
@click.option("--password", default=None, help="Use this password instead of generating one.")
@_friendly
def workstation_reset(workstation_id: str, password: str | None) -> None:
    chosen = password or workstations.generate_password()
    with _session(_config()) as session:
        workstations.reset_password(session, workstation_id, chosen)
    click.echo(f"New password for {workstation_id}: {chosen}" if not password else "Password changed.")


@workstation.command("deactivate")
@click.argument("workstation_id")
@_friendly
def workstation_deactivate(workstation_id: str) -> None:
    """Sign the workstation out everywhere and refuse its sign-ins until it is reactivated."""
    with _session(_config()) as session:
        workstations.set_active(session, workstation_id, False)
    click.echo(f"{workstation_id} is deactivated: its sessions have ended and it can't sign in.")


@workstation.command("reactivate")
@click.argument("workstation_id")
@_friendly
def workstation_reactivate(workstation_id: str) -> None:
    """Let a deactivated workstation sign in again with its password."""
    with _session(_config()) as session:
        workstations.set_active(session, workstation_id, True)
    click.echo(f"{workstation_id} is active again; it signs in with its password.")


@workstation.command("sign-in-again")
@click.argument("workstation_id")
@_friendly
def workstation_sign_in_again(workstation_id: str) -> None:
    """Forget the wrong passwords typed for a workstation, so every computer may sign in to it now."""
    from printlab.services.lab import sign_in_guard

    with _session(_config()) as session:
        waiting = sign_in_guard.let_sign_in_again(session, workstation_id)
    click.echo(f"{workstation_id} can be signed in to again ({waiting} address(es) were waiting).")


@main.command()
@click.option("--serve", "then_serve", is_flag=True, help="Start the server afterwards.")
@click.option("--host", default=None)
@click.option("--port", default=None, type=int)
@_friendly
def demo(then_serve: bool, host: str | None, port: int | None) -> None:
    """Load demo staff, a workstation and about 20 jobs in every status (once), then print how to sign in."""
    from printlab.services.lab import demo as demo_service

    # A first look: short, readable warnings only (unless PRINTLAB_LOG_LEVEL asks for more), so the
    # password stays on the screen.
    os.environ.setdefault("PRINTLAB_LOG_LEVEL", "WARNING")  # for this process only: serve reads it too
    configure_logging(os.environ["PRINTLAB_LOG_LEVEL"], readable=True)
    settings = _config(host=host, port=port)
    upgrade(settings.database_url)
    storage = _storage(settings)
    with _session(settings) as session:
        result = demo_service.load(session, storage)
    click.echo(result.summary)
    sign_in = (
        f"Sign in at {settings.base_url}/login",
        f"  workstation: {result.workstation}",
        f"  password:    {result.password}",
    )
    if not then_serve:
        for line in sign_in:
            click.echo(line)
        return
    click.echo(f"Students submit at {settings.base_url}/submit; their emails are on the admin Mail page.")
    ctx = click.get_current_context()
    ctx.invoke(serve, host=host, port=port, then_say=sign_in)


@main.command("worker")
@click.option("--once", is_flag=True, help="Run what is due now, then exit (for cron or tests).")
@click.option("--poll", default=1.0, show_default=True, type=float, help="Seconds between looks for work.")
@_friendly
def worker_command(once: bool, poll: float) -> None:
    """Run background work (model analysis, email, sweeps). Run as many as you like, on any machine."""
    import signal

    from printlab.worker import build_worker

    settings = _config()
    engine = make_engine(settings.database_url)
    try:
        check_database(engine)
        worker = build_worker(settings, session_factory(engine), _storage(settings), kind="process")
        worker.poll_seconds = poll
        if once:
            worker.tick()
            return
        signal.signal(signal.SIGTERM, lambda *_: worker.stop())
        click.echo(f"Worker {worker.identity} running (Ctrl+C stops it)")
        try:
            worker.run_forever()
        except KeyboardInterrupt:
            worker.stop()
    finally:
        engine.dispose()


@main.command("archive")
@click.option("--dry-run", is_flag=True, help="Only show how many jobs would be archived.")
@_friendly
def archive_command(dry_run: bool) -> None:
    """Archive jobs past the retention period (Paid & Picked Up or Rejected for 90 days, by default)."""
    from printlab.services.upkeep import sweeps

    settings = _config()
    with _session(settings) as session:
        preview = sweeps.archive_preview(session)
        click.echo(
            f"{preview.total} job(s) reached their final status before {preview.cutoff:%Y-%m-%d %H:%M} UTC "
            f"({preview.after_days} days ago): "
            + ", ".join(f"{count} {status}" for status, count in preview.by_status.items())
        )
        if dry_run or not preview.total:
            return
        storage = _storage(settings)
        archived = 0
        while True:  # in batches, as the worker does, until nothing is left
            done = sweeps.archive_due(session, storage)
            archived += done
            if done == 0:
                break
        click.echo(f"Archived {archived} job(s).")


@main.command("prune")
@click.option("--dry-run", is_flag=True, help="Only show how many jobs would be pruned.")
@_friendly
def prune_command(dry_run: bool) -> None:
    """Prune archived jobs past the prune period: files deleted, the student's name and email removed."""
    from printlab.services.upkeep import prune

    settings = _config()
    with _session(settings) as session:
        due = prune.plan(session)
        click.echo(f"{due.count} archived job(s) were archived before {due.cutoff:%Y-%m-%d %H:%M} UTC.")
        if dry_run or not due.count:
            return
        pruned = prune.prune(session, _storage(settings), limit=due.count)
        click.echo(f"Pruned {pruned} job(s): files deleted, name and email removed; rows and events kept.")


@main.group()
def mail() -> None:
    """The outbox: what waits, what failed, sending now, retrying by hand."""


@mail.command("status")
@_friendly
def mail_status() -> None:
    """Counts of waiting and failed emails, and each failed one with its error."""
    from printlab.services import mail as mail_service

    with _session(_config()) as session:
        view = mail_service.overview(session)
        click.echo(f"Waiting: {view.backlog.pending}  Failed: {view.backlog.failed}")
        for row in view.failed:
            message = row.message
            click.echo(f"{message.id}\t{message.template}\tjob {row.simple_id}\t{message.last_error or ''}")


@mail.command("send")
@_friendly
def mail_send() -> None:
    """Deliver every email that is due now (what the worker does on each tick)."""
    from printlab.services import mail as mail_service
    from printlab.worker import worker_id

    settings = _config()
    mailer = mail_service.Mailer.from_config(settings, identity=worker_id("cli-mail"))
    with _session(settings) as session:
        report = mail_service.deliver_due(session, mailer, run_seconds=3600)
    click.echo(
        f"Sent {report.sent}, will retry {report.retrying}, failed {report.failed}, "
        f"not needed any more {report.cancelled}."
    )


@mail.command("retry")
@click.argument("outbox_id", type=int)
@click.option("--as", "acting_as", required=True, help="The staff member retrying it.")
@_friendly
def mail_retry(outbox_id: int, acting_as: str) -> None:
    """Send a failed email again (the worker picks it up within a second)."""
    from printlab.services import mail as mail_service

    with _session(_config()) as session:
        message = mail_service.retry(session, outbox_id, staff=acting_as)
    click.echo(f"Email {message.id} ({message.template}) is queued again.")


@main.command("check")
@click.option("--repair", "apply_repairs", is_flag=True, help="Apply every safe repair, then check again.")
@click.option(
    "--acting-as",
    "acting_as",
    default=None,
    help="Staff member the repairs are attributed to (default: the console).",
)
@_friendly
def check_command(apply_repairs: bool, acting_as: str | None) -> None:
    """Compare the database with the storage folders and report; exit status 1 while findings remain."""
    from printlab.services.lab.actors import CONSOLE, Actor
    from printlab.services.upkeep import findings, repair

    if acting_as and not apply_repairs:
        raise click.UsageError("--acting-as only applies with --repair.")
    settings = _config()
    storage = _storage(settings)
    with _session(settings) as session:
        if apply_repairs:
            outcomes = repair.repair_all(session, storage, actor=Actor(acting_as, CONSOLE))
            for line in repair.describe(outcomes):
                click.echo(line)
            if not outcomes:
                click.echo("Nothing to repair.")
        result = findings.check(session, storage)
    report = result.report
    summary = f"{report.jobs_checked} job(s) and {report.files_checked} file(s) under {storage.root}"
    for kind, items in result.groups():
        click.echo(f"\n{kind.heading} ({len(items)})")
        for item in items:
            click.echo(f"  {item.path}" + (f"  [job {item.simple_id}]" if item.simple_id else ""))
            click.echo(f"    {item.problem}")
            click.echo(
                f"    Repair: {item.repair}"
                if item.repair
                else "    Needs a person: PrintLab won't repair it."
            )
    if result.lost_and_found:
        click.echo(
            f"\n{findings.LOST_AND_FOUND}/ holds {result.lost_and_found} file(s) for a person to look through."
        )
    if result.ok:
        click.echo(f"No problems found: {summary}.")
        return
    click.echo(
        f"\n{len(result.items)} finding(s) in {summary}; {len(result.repairable)} can be repaired "
        "with `printlab check --repair`."
    )
    sys.exit(1)


@main.command("backup")
@click.argument("directory", type=click.Path(file_okay=False))
@_friendly
def backup_command(directory: str) -> None:
    """Snapshot the database and the storage tree into DIRECTORY (new or empty) while PrintLab runs."""
    from printlab.services.upkeep import backup as backup_service
    from printlab.services.upkeep import summaries

    settings = _config()
    result = backup_service.backup(settings.database_url, Storage(settings.storage_dir), directory)
    for line in summaries.backup_summary(result):
        click.echo(line)


@main.command("restore")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Replace a database and a storage root that already hold data.")
@_friendly
def restore_command(directory: str, force: bool) -> None:
    """Check a backup's checksums, restore it into the configured database and storage, then run the
    integrity check. Stop PrintLab first. Exit status 2: restored, but job files are missing."""
    from printlab.services.upkeep import restore as restore_service
    from printlab.services.upkeep import summaries

    settings = _config()
    result = restore_service.restore(directory, settings.database_url, settings.storage_dir, force=force)
    for line in summaries.restore_summary(result):
        click.echo(line)
    if result.integrity is not None and result.integrity.serious:
        click.echo(
            f"printlab: restored, but {len(result.integrity.missing)} job file(s) are missing (listed above)",
            err=True,
        )
        sys.exit(2)


@main.command("export")
@click.argument("kind", type=click.Choice(EXPORT_KINDS))
@click.option(
    "--from", "first", required=True, metavar="YYYY-MM-DD", help="First day of the period (lab time)."
)
@click.option("--to", "last", required=True, metavar="YYYY-MM-DD", help="Last day of the period, included.")
@click.option(
    "--format", "fmt", type=click.Choice(EXPORT_FORMATS), default="csv", show_default=True, help="File type."
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write the file here (default: standard output; XLSX only when it is redirected).",
)
@_friendly
def export_command(kind: str, first: str, last: str, fmt: str, output: str | None) -> None:
    """Export a period's jobs, payments, events or account-code statement lines, as CSV or XLSX.

    The period is lab days in the lab's time zone, both days included. CSV goes to standard output
    unless --output is given; XLSX (a binary file) needs --output or a redirected standard output.
    """
    import shutil
    import tempfile
    from pathlib import Path

    from printlab.domain.periods import PeriodError, parse_period
    from printlab.services.exports import export

    try:
        period = parse_period(first, last)
    except PeriodError as exc:
        raise click.UsageError(
            " ".join(f"--{key}: {message}" for key, message in exc.errors.items())
        ) from None
    stdout = sys.stdout.buffer
    if fmt == "xlsx" and output is None and stdout.isatty():
        raise click.UsageError("An XLSX file is binary: give --output FILE, or redirect standard output.")
    target = Path(output) if output else None
    if target is not None and not target.parent.is_dir():
        raise click.UsageError(f"--output: the folder {target.parent} doesn't exist.")
    with _session(_config()) as session:
        if target is None and fmt == "csv":
            for chunk in export.csv_stream(session, kind, period):
                stdout.write(chunk)
            stdout.flush()
            return
        # A file is written beside its target and renamed into place, so a failure never leaves half
        # a file; XLSX for standard output goes through a temporary file (a zip is complete at its end).
        with tempfile.NamedTemporaryFile(
            "w+b",
            dir=target.parent if target else None,
            prefix=".printlab-export-",
            suffix=f".{fmt}",
            delete=False,
        ) as spool:
            try:
                if fmt == "csv":
                    for chunk in export.csv_stream(session, kind, period):
                        spool.write(chunk)
                else:
                    export.write_xlsx(session, kind, period, spool)
                spool.flush()
                if target is None:
                    spool.seek(0)
                    shutil.copyfileobj(spool, stdout)
                    stdout.flush()
            except BaseException:
                Path(spool.name).unlink(missing_ok=True)
                raise
    if target is None:
        Path(spool.name).unlink(missing_ok=True)
        return
    Path(spool.name).replace(target)
    click.echo(f"Wrote the {kind} export of {period.words} to {target}.", err=True)
