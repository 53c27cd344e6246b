"""``fundline dev …``: tools for developing Fundline. ``fake-kanmon`` serves the fake Kanmon
(``fake.py``) for a Fundline run with ``FUNDLINE_LENDER=kanmon``."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(
    help="Tools for developing Fundline: a fake Kanmon to run it against.", no_args_is_help=True
)


@app.command("fake-kanmon")
def fake_kanmon(
    port: Annotated[int, typer.Option(help="TCP port to listen on (0: any free one).")] = 8090,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            help="An API key the fake accepts (repeat for more); without one, any non-empty "
            "'ApiKey …' is accepted.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve a fake Kanmon (Public V2 platform API, checked against Kanmon's spec, state in
    memory) and its control API under /_fake/. Ctrl-C stops it."""
    # Imported here: the fake loads Kanmon's spec, which no other command needs.
    from fundline.lending.kanmon.fake_server import serve

    serve(host=host, port=port, api_keys=api_key)
