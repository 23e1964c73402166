"""`/ready` for load balancers: ready while Dify answers, unready (503, saying why) while it does not or Redis is
down, ready again when it is back."""

import time

import httpx

from app import create_app
from app.config import DifyAppKey, Settings
from tests.dify_double import DifyAppDouble, DifyDouble, ServerThread
from tests.e2e.conftest import CLIENT_KEY, own_gateway


def _ready(url: str) -> httpx.Response:
    return httpx.get(f"{url}/ready", timeout=10)


def test_ready_follows_dify_going_away_and_coming_back() -> None:
    double = DifyDouble(apps=[DifyAppDouble(key="app-ready", name="ready-app", mode="chat", report_mode=True)])
    first = ServerThread(double).__enter__()
    port = first.config.port if first.config.port else int(first.url.rsplit(":", 1)[1])
    double.url = first.url
    settings = Settings(
        valid_api_keys=(CLIENT_KEY,), dify_api_keys=(DifyAppKey("app-ready"),), dify_api_base=f"{first.url}/v1"
    )
    with ServerThread(create_app(settings)) as gateway:
        deadline = time.monotonic() + 10
        while _ready(gateway.url).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        body = _ready(gateway.url).json()
        assert body["status"] == "ready" and body["apps"] == {
            "configured": 1,
            "discovered": 1,
            "reachable": 1,
            "unreachable": [],
        }
        first.__exit__()
        time.sleep(1.1)  # past the probe's second of caching
        down = _ready(gateway.url)
        assert down.status_code == 503
        assert down.json()["status"] == "unready" and down.json()["apps"]["unreachable"] == [1]
        assert "no configured Dify app answers" in down.json()["problems"][0]
        assert httpx.get(f"{gateway.url}/health").status_code == 200  # still alive
        with ServerThread(double, port=port):
            time.sleep(1.1)
            back = _ready(gateway.url)
            assert back.status_code == 200 and back.json()["status"] == "ready"


def test_ready_is_503_while_redis_is_unreachable(dify: DifyDouble) -> None:
    with own_gateway(dify, redis_url="redis://127.0.0.1:1/0") as url:
        response = _ready(url)
    assert response.status_code == 503
    assert response.json()["store"] == "unreachable"
    assert "Redis (REDIS_URL) is unreachable" in response.json()["problems"]


def test_ready_without_apps_configured_is_503() -> None:
    with ServerThread(create_app(Settings(valid_api_keys=(CLIENT_KEY,)))) as gateway:
        response = _ready(gateway.url)
    assert response.status_code == 503
    assert response.json()["problems"] == ["no Dify apps are configured (DIFY_API_KEYS is empty)"]
