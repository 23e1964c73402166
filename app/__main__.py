"""`python -m app`: serve on SERVER_HOST:SERVER_PORT with uvicorn (uvloop and httptools when installed)."""

import sys

import uvicorn

from app.config import ConfigError, load_settings


def main() -> None:
    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.stderr.write(f"opendify: configuration error: {exc}\n")
        raise SystemExit(2) from None
    uvicorn.run(
        "app:create_app",
        factory=True,
        host=settings.server_host,
        port=settings.server_port,
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
