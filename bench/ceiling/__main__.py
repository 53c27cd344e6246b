"""``python -m bench.ceiling --database-url … --port …``: serve the ceiling (uvicorn, as
``fundline serve`` runs, one process)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn

from bench.ceiling.app import create_app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ceiling",
        description="The ceiling server: the least a server can do for each bench scenario.",
    )
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8812)
    args = parser.parse_args(argv)
    url = args.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    uvicorn.run(
        create_app(url), host=args.host, port=args.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
