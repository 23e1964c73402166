"""The API docs render where the gateway runs, with no internet: `/docs` and `/docs/swagger` opened in Debian's
headless Chromium, every host but this machine unresolvable, show the chat completions operation, and the browser's
network log shows no request leaving the machine."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _open(url: str, netlog: Path) -> str:
    assert CHROMIUM, "Debian's chromium is needed (`make test` installs it: apt-get install chromium)"
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # no name but loopback resolves
        f"--log-net-log={netlog}",
        "--virtual-time-budget=20000",
        "--dump-dom",
        url,
    ]
    done = subprocess.run(command, capture_output=True, timeout=120, check=False)
    return done.stdout.decode()


@pytest.mark.parametrize("path", ["/docs", "/docs/swagger"])
def test_the_docs_render_offline_in_a_real_browser(gateway_url: str, path: str, tmp_path: Path) -> None:
    netlog = tmp_path / "net.json"
    dom = _open(gateway_url + path, netlog)
    assert "opblock" in dom, dom[:2000]  # Swagger UI drew its operations
    assert "/v1/chat/completions" in dom and "Chat with a Dify" in dom
    page = _page_requests(netlog, gateway_url)
    assert any(url.endswith("/docs/assets/swagger-ui-bundle.js") for url in page), page
    outside = {url for url in page if not url.startswith(gateway_url)}
    assert outside == set(), outside  # the page asked for nothing off this machine


def _page_requests(netlog: Path, origin: str) -> set[str]:
    """The URLs the page itself asked for (its initiator is the gateway), not the browser's own background calls."""
    text = netlog.read_text().rstrip()
    log = json.loads(text if text.endswith("}") else text.rstrip(",") + "]}")  # (a log cut short at exit)
    return {
        event["params"]["url"]
        for event in log["events"]
        if event.get("params", {}).get("initiator") == origin and "url" in event["params"]
    }
