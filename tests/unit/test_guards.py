"""Client key extraction and checking."""

from typing import Any

import pytest
from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.testing import RequestFactory

from app.config import Settings
from app.errors import AuthenticationError, PermissionDeniedError
from app.guards import key_is_valid, presented_key, require_client_key
from app.services.pipeline import client_id_for


def connection(headers: dict[str, str], server: str = "test.org") -> ASGIConnection[Any, Any, Any, Any]:
    return RequestFactory(server=server).get("/v1/models", headers=headers)


# --- presented_key --------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_bearer_scheme_is_case_insensitive(scheme: str) -> None:
    assert presented_key(connection({"Authorization": f"{scheme} sk-test-1"})) == "sk-test-1"


def test_bearer_token_is_stripped() -> None:
    assert presented_key(connection({"Authorization": "Bearer   sk-test-1  "})) == "sk-test-1"


@pytest.mark.parametrize("value", ["Bearer", "Bearer ", "Bearer    ", "Basic dXNlcjpwYXNz", "sk-test-1", "Token sk-1"])
def test_authorization_without_bearer_token_is_no_key(value: str) -> None:
    assert presented_key(connection({"Authorization": value})) is None


def test_api_key_header() -> None:
    assert presented_key(connection({"api-key": "sk-azure"})) == "sk-azure"


def test_header_names_are_case_insensitive() -> None:
    assert presented_key(connection({"AUTHORIZATION": "Bearer sk-1"})) == "sk-1"
    assert presented_key(connection({"Api-Key": "sk-2"})) == "sk-2"


def test_authorization_wins_over_api_key() -> None:
    assert presented_key(connection({"Authorization": "Bearer sk-bearer", "api-key": "sk-azure"})) == "sk-bearer"


def test_no_credentials() -> None:
    assert presented_key(connection({})) is None


# --- key_is_valid ---------------------------------------------------------------------------------------


def test_key_is_valid() -> None:
    keys = ("sk-one", "sk-two")
    assert key_is_valid("sk-one", keys)
    assert key_is_valid("sk-two", keys)
    assert not key_is_valid("sk-three", keys)
    assert not key_is_valid("sk-on", keys)
    assert not key_is_valid("sk-one ", keys)
    assert not key_is_valid("SK-ONE", keys)
    assert not key_is_valid("", keys)


def test_key_is_valid_with_no_keys() -> None:
    assert not key_is_valid("sk-one", ())
    assert not key_is_valid("", ())


def test_key_is_valid_non_ascii() -> None:
    assert key_is_valid("clé-ü", ("clé-ü",))
    assert not key_is_valid("cle-u", ("clé-ü",))


# --- require_client_key ---------------------------------------------------------------------------------


def guarded(
    settings: Settings, headers: dict[str, str], server: str = "test.org"
) -> ASGIConnection[Any, Any, Any, Any]:
    application = Litestar(state=State({"settings": settings}), logging_config=None)
    return RequestFactory(app=application, server=server).get("/v1/models", headers=headers)


@pytest.mark.anyio
async def test_require_client_key_accepts_a_valid_key() -> None:
    conn = guarded(Settings(valid_api_keys=("sk-good",)), {"Authorization": "Bearer sk-good"})
    await require_client_key(conn, None)
    assert conn.state.client_id == client_id_for("sk-good")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer sk-bad"}, {"api-key": "sk-bad"}])
@pytest.mark.anyio
async def test_require_client_key_rejects(headers: dict[str, str]) -> None:
    conn = guarded(Settings(valid_api_keys=("sk-good",)), headers)
    with pytest.raises(AuthenticationError) as info:
        await require_client_key(conn, None)
    assert info.value.status_code == 401


@pytest.mark.anyio
async def test_require_client_key_open_gateway_serves_loopback() -> None:
    conn = guarded(Settings(), {}, server="127.0.0.1")
    await require_client_key(conn, None)
    assert conn.state.client_id == client_id_for(None)


@pytest.mark.anyio
async def test_require_client_key_open_gateway_refuses_other_sockets() -> None:
    conn = guarded(Settings(), {}, server="10.0.0.1")
    with pytest.raises(AuthenticationError):
        await require_client_key(conn, None)


@pytest.mark.anyio
async def test_an_open_gateway_refuses_requests_from_web_pages() -> None:
    conn = guarded(Settings(), {"Origin": "https://evil.example"}, server="127.0.0.1")
    with pytest.raises(PermissionDeniedError) as info:
        await require_client_key(conn, None)
    assert info.value.code == "origin_not_allowed"


@pytest.mark.parametrize("allowed", [("http://localhost:3000",), ("*",)])
@pytest.mark.anyio
async def test_an_open_gateway_serves_pages_of_allowed_origins(allowed: tuple[str, ...]) -> None:
    conn = guarded(Settings(cors_allow_origins=allowed), {"Origin": "http://localhost:3000"}, server="127.0.0.1")
    await require_client_key(conn, None)
    assert conn.state.client_id == client_id_for(None)


@pytest.mark.anyio
async def test_with_keys_the_origin_does_not_matter() -> None:
    conn = guarded(
        Settings(valid_api_keys=("sk-good",)), {"Authorization": "Bearer sk-good", "Origin": "https://x.example"}
    )
    await require_client_key(conn, None)
    assert conn.state.client_id == client_id_for("sk-good")
