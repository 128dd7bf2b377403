"""`citylake api …`: app tokens and the data-product API server."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from citylake.settings import get_settings

app = typer.Typer(help="The data-product API (数据服务): tokens, serve.", no_args_is_help=True)
token_app = typer.Typer(help="App tokens (stored hashed).", no_args_is_help=True)
app.add_typer(token_app, name="token")
err = Console(stderr=True)


@token_app.command("create")
def token_create(
    app_name: Annotated[str, typer.Option("--app", help="The calling app's name")],
    department: Annotated[str, typer.Option(help="The department the app acts for")],
) -> None:
    """Create (or replace) an app's token; printed once, only its SHA-256 is kept."""
    from catalog.grants import AccessError
    from serving.tokens import create

    try:
        token = create(app_name, department)
    except (AccessError, RuntimeError) as exc:
        err.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(2) from exc
    print(token)
    err.print(f"token of app {app_name} ({department}); it is not shown again")


def asgi_app():
    """uvicorn's factory: one app per worker process, from the environment's settings."""
    from serving.app import create_app

    return create_app(get_settings())


@app.command("serve")
def serve(
    port: Annotated[int | None, typer.Option(help="Default: settings api.port")] = None,
    workers: Annotated[int | None, typer.Option(help="Default: settings api.workers")] = None,
) -> None:
    """Serve the API on the settings' loopback address with uvicorn (docs at /docs)."""
    import uvicorn

    api = get_settings().api
    uvicorn.run(
        "serving.cli:asgi_app",
        factory=True,
        host=api.host,
        port=port or api.port,
        workers=workers or api.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,  # every call is in the audit table already
        log_level="warning",
    )
