"""`olist-bi outbox`: the local demo's mail: list what the sink kept, serve or stop it."""

from __future__ import annotations


import click

from olist_bi.cli.base import load_settings
from olist_bi.runtime import output
from olist_bi.runtime.output import emit


@click.group(invoke_without_command=True)
@output.option
@click.pass_context
def outbox(ctx: click.Context, fmt: str) -> None:
    """The local demo's mail: list the messages the demo's mail sink kept in $OLIST_HOME/outbox/
    (oldest first: when, to, subject, attachments, file). `olist-bi outbox serve` runs the sink."""
    if ctx.invoked_subcommand is not None:
        return
    from olist_bi.notify import outbox as sink

    settings = load_settings()
    kept = sink.messages(settings)
    rows = [
        {
            "received": m.received,
            "to": m.to,
            "subject": m.subject,
            "path": str(m.path),
            "attachments": [{"name": name, "type": kind, "bytes": size} for name, kind, size in m.attachments],
        }
        for m in kept
    ]

    def table() -> None:
        if not rows:
            click.echo(f"no message in {settings.outbox_dir}")
        for m in rows:
            attached = "; ".join(f"{a['name']} ({a['type']}, {a['bytes']:,} bytes)" for a in m["attachments"]) or "no attachment"
            click.echo(f"{m['received']:%Y-%m-%d %H:%M:%S} UTC  to {m['to']}\n  {m['subject']}\n  {attached}\n  {m['path']}")

    emit(fmt, rows, table)


@outbox.command(name="serve")
@click.option("--foreground", is_flag=True, help="Run the sink in this process until stopped (what the detached one runs).")
@output.option
def outbox_serve(foreground: bool, fmt: str) -> None:
    """Run the demo's mail sink on 127.0.0.1:OLIST_SMTP_PORT (8025), detached: an SMTP server
    that sends nothing on and keeps each message as an .eml file in $OLIST_HOME/outbox/."""
    from olist_bi.notify import outbox as sink

    settings = load_settings()
    if not foreground:
        address = sink.serve(settings, say=lambda m: click.echo(m, err=True))
        emit(
            fmt,
            [{"address": address, "outbox": str(settings.outbox_dir)}],
            lambda: click.echo(f"The mail sink listens on {address}; messages in {settings.outbox_dir}"),
            {"address": address, "outbox": str(settings.outbox_dir)},
        )
        return
    import signal
    import threading

    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    server = sink.controller(settings, say=lambda m: click.echo(m, err=True))
    server.start()
    click.echo(f"mail sink on 127.0.0.1:{settings.smtp_port}; messages in {settings.outbox_dir}", err=True)
    stopped.wait()
    server.stop()


@outbox.command(name="stop")
@output.option
def outbox_stop(fmt: str) -> None:
    """Stop the mail sink that `olist-bi outbox serve` (or `up`) started."""
    from olist_bi.notify import outbox as sink

    output.stopped(fmt, sink.stop(load_settings()))
