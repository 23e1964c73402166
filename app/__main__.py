"""`python -m app`: serve on SERVER_HOST:SERVER_PORT (WEB_CONCURRENCY workers), with the same limits as
`litestar run` (app.server)."""

import sys

from app.config import ConfigError, load_settings
from app.server import serve


def main() -> None:
    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.stderr.write(f"opendify: configuration error: {exc}\n")
        raise SystemExit(2) from None
    serve(settings, host=settings.server_host, port=settings.server_port, workers=settings.workers)


if __name__ == "__main__":
    main()
