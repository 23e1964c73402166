"""`litestar run` starts the gateway through `app.server.serve`, with its client limits and shutdown grace: this
plugin replaces the Litestar CLI's own `run` (plain uvicorn, unbounded) with one that takes the same main flags."""

import click
from litestar.plugins import CLIPlugin

from app.config import Settings
from app.server import serve


def run_command(settings: Settings) -> click.Command:
    @click.command(name="run", help="Run the gateway (uvicorn with the gateway's client limits).")
    @click.option("-H", "--host", envvar="LITESTAR_HOST", default=None, help="Address to bind (default SERVER_HOST)")
    @click.option("-p", "--port", envvar="LITESTAR_PORT", type=int, default=None, help="Port (default SERVER_PORT)")
    @click.option(
        "-W",
        "--wc",
        "--web-concurrency",
        "--workers",
        "workers",
        envvar="LITESTAR_WEB_CONCURRENCY",
        type=click.IntRange(min=1),
        default=None,
        help="Worker processes (default WEB_CONCURRENCY, 1)",
    )
    @click.option("-r", "--reload", is_flag=True, default=False, help="Reload on code changes (development)")
    def run(host: str | None, port: int | None, workers: int | None, reload: bool) -> None:
        serve(
            settings,
            host=settings.server_host if host is None else host,
            port=settings.server_port if port is None else port,
            workers=workers or settings.workers,
            reload=reload,
        )

    return run


class ServerCLIPlugin(CLIPlugin):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def on_cli_init(self, cli: click.Group) -> None:
        cli.add_command(run_command(self._settings))
