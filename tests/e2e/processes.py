"""Real processes for the tests that need them: redis-server, and gateways started as users start them."""

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(ready: Callable[[], bool], what: str, process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        if ready():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start")


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def redis_server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server; .ci/run does this)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait(lambda: _redis_answers(port), "redis-server", process)
        yield f"redis://127.0.0.1:{port}/0", process
    finally:
        process.terminate()
        process.wait(timeout=10)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


# the ways the README starts the gateway, each with {port} to fill in
LAUNCHERS: dict[str, list[str]] = {
    "litestar run": [sys.executable, "-m", "litestar", "run", "--host", "127.0.0.1", "--port", "{port}"],
    "python -m app": [sys.executable, "-m", "app"],
    "uvicorn": [
        sys.executable,
        "-m",
        "uvicorn",
        "app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
    ],
}


@contextmanager
def gateway_popen(
    env: dict[str, str], workdir: Path, launcher: str = "uvicorn", stderr: int | None = subprocess.DEVNULL
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The gateway in its own process, started by `launcher` (see LAUNCHERS), configured by environment only."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DIFY_", "VALID_", "REDIS_", "CONVERSATION_"))}
    command = [part.replace("{port}", str(port)) for part in LAUNCHERS[launcher]]
    process = subprocess.Popen(
        command,
        cwd=workdir,  # no .env there: only `env` configures it
        env={
            **clean,
            "PYTHONPATH": str(ROOT),
            "LITESTAR_APP": "app:create_app",
            "LOG_LEVEL": "WARNING",
            "SERVER_HOST": "127.0.0.1",
            "SERVER_PORT": str(port),
            **env,
        },
        stderr=stderr,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _healthy(url), "gateway", process)
        yield url, process
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=30)


@contextmanager
def gateway_process(
    env: dict[str, str], workdir: Path, launcher: str = "uvicorn", stderr: int | None = subprocess.DEVNULL
) -> Iterator[str]:
    with gateway_popen(env, workdir, launcher, stderr) as (url, _):
        yield url
