"""Settings parsing, `.env` loading and the start-up refusal of an open, non-loopback gateway."""

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dotenv import dotenv_values
from litestar import Litestar
from litestar.testing import TestClient

import app as opendify
from app import config
from app.config import ConfigError, DifyAppKey, Settings, is_loopback, load_settings, settings_from_mapping

ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - a host that is not loopback

# every variable the gateway reads (the table in app.config), plus the Litestar CLI's host
VARIABLES = (*config._VARIABLES, "LITESTAR_HOST")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """No gateway variable in the environment, no `.env` in the working directory, no CLI host."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["litestar", "run"])
    logger = logging.getLogger("opendify")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield monkeypatch
    # create_app() installs a handler on the (captured) stderr: take it away again
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


# --- settings_from_mapping ------------------------------------------------------------------------------


def test_defaults() -> None:
    settings = settings_from_mapping({})
    assert settings == Settings()
    assert settings.valid_api_keys == ()
    assert settings.dify_api_keys == ()
    assert settings.dify_api_base == "https://api.dify.ai/v1"
    assert settings.timeout == 120.0
    assert settings.connect_timeout == 5.0
    assert settings.server_host == "127.0.0.1"
    assert settings.server_port == 8000
    assert settings.dify_http2 is False
    assert settings.log_level == "INFO"
    assert settings.auth_required is False


def test_unrelated_variables_are_ignored() -> None:
    assert settings_from_mapping({"PATH": "/bin", "HOME": "/root"}) == Settings()


def test_blank_values_keep_defaults() -> None:
    settings = settings_from_mapping({"TIMEOUT": "", "SERVER_PORT": "   ", "DIFY_API_BASE": ""})
    assert settings.timeout == 120.0
    assert settings.server_port == 8000
    assert settings.dify_api_base == "https://api.dify.ai/v1"


def test_comma_lists_with_spaces() -> None:
    settings = settings_from_mapping(
        {"VALID_API_KEYS": " sk-one , sk-two,,sk-three ,", "DIFY_API_KEYS": "app-a , app-b ,"}
    )
    assert settings.valid_api_keys == ("sk-one", "sk-two", "sk-three")
    assert settings.dify_api_keys == (DifyAppKey(key="app-a"), DifyAppKey(key="app-b"))
    assert settings.auth_required is True


def test_empty_valid_api_keys_means_no_auth() -> None:
    settings = settings_from_mapping({"VALID_API_KEYS": ""})
    assert settings.valid_api_keys == ()
    assert settings.auth_required is False


def test_dify_key_modes() -> None:
    settings = settings_from_mapping(
        {"DIFY_API_KEYS": "app-x:agent-chat, app-y, app-z:advanced-chat ,app-w:chat,app-v:workflow,app-u:completion"}
    )
    assert settings.dify_api_keys == (
        DifyAppKey(key="app-x", mode="agent-chat"),
        DifyAppKey(key="app-y", mode=None),
        DifyAppKey(key="app-z", mode="advanced-chat"),
        DifyAppKey(key="app-w", mode="chat"),
        DifyAppKey(key="app-v", mode="workflow"),
        DifyAppKey(key="app-u", mode="completion"),
    )


@pytest.mark.parametrize(
    ("raw", "entry"),
    [
        ("app-SECRET123:bogus", 1),
        ("app-fine:chat, app-SECRET123:agents", 2),
        ("app-SECRET123:", 1),
        ("app-SECRET123:workflow:chat", 1),
        ("app-fine, app-SECRET123:workflow:inptu=question", 2),
        ("app-SECRET123:input=", 1),
        ("app-SECRET123:app-SECRET123", 1),  # a `:` typed for a `,`: the second key is not echoed either
        (":chat", 1),
    ],
)
def test_unknown_mode_is_rejected_without_echoing_the_key(raw: str, entry: int) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping({"DIFY_API_KEYS": raw})
    message = str(info.value)
    assert "DIFY_API_KEYS" in message
    assert f"entry {entry}" in message
    assert "SECRET123" not in message
    assert "app-fine" not in message


@pytest.mark.parametrize("raw", ["abc", "0", "-5", "nan"])
def test_bad_timeout(raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping({"TIMEOUT": raw})
    assert str(info.value).startswith("TIMEOUT:")


def test_timeout_values() -> None:
    settings = settings_from_mapping({"TIMEOUT": " 30 ", "CONNECT_TIMEOUT": "2.5"})
    assert settings.timeout == 30.0
    assert settings.connect_timeout == 2.5


def test_bad_connect_timeout_names_connect_timeout() -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping({"CONNECT_TIMEOUT": "soon"})
    assert str(info.value).startswith("CONNECT_TIMEOUT:")


@pytest.mark.parametrize("raw", ["not-a-url", "ftp://dify.example/v1", "http://", "dify.example/v1"])
def test_bad_dify_api_base(raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping({"DIFY_API_BASE": raw})
    assert str(info.value).startswith("DIFY_API_BASE:")
    assert raw in str(info.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://dify.example.com/v1/", "https://dify.example.com/v1"),
        ("http://localhost:5001/v1", "http://localhost:5001/v1"),
        (" http://10.0.0.5/v1// ", "http://10.0.0.5/v1"),
    ],
)
def test_dify_api_base_normalised(raw: str, expected: str) -> None:
    assert settings_from_mapping({"DIFY_API_BASE": raw}).dify_api_base == expected


@pytest.mark.parametrize("raw", ["70000", "0", "65536", "-1", "http", "80.5"])
def test_bad_server_port(raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping({"SERVER_PORT": raw})
    assert str(info.value).startswith("SERVER_PORT:")


@pytest.mark.parametrize("raw", ["1", "65535", "8080"])
def test_server_port(raw: str) -> None:
    assert settings_from_mapping({"SERVER_PORT": raw}).server_port == int(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("on", True),
        (" True ", True),
        ("false", False),
        ("0", False),
        ("no", False),
        ("off", False),
        ("False", False),
    ],
)
def test_dify_http2(raw: str, expected: bool) -> None:
    assert settings_from_mapping({"DIFY_HTTP2": raw}).dify_http2 is expected


def test_bad_dify_http2() -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping({"DIFY_HTTP2": "maybe"})
    assert str(info.value).startswith("DIFY_HTTP2:")


@pytest.mark.parametrize(("name", "raw"), [("DIFY_MAX_CONNECTIONS", "0"), ("MAX_REQUEST_BODY", "1.5")])
def test_bad_positive_ints(name: str, raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping({name: raw})
    assert str(info.value).startswith(f"{name}:")


def test_log_level() -> None:
    assert settings_from_mapping({"LOG_LEVEL": "debug"}).log_level == "DEBUG"
    with pytest.raises(ConfigError) as info:
        settings_from_mapping({"LOG_LEVEL": "chatty"})
    assert str(info.value).startswith("LOG_LEVEL:")


def test_server_host_is_stripped() -> None:
    assert settings_from_mapping({"SERVER_HOST": f" {ALL_INTERFACES} "}).server_host == ALL_INTERFACES


# --- is_loopback ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        (ALL_INTERFACES, False),
        ("::", False),
        ("10.0.0.1", False),
        ("192.168.1.10", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


# --- load_settings --------------------------------------------------------------------------------------


def test_load_settings_reads_dotenv(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    dotenv = tmp_path / "custom.env"
    dotenv.write_text("TIMEOUT=10\nSERVER_PORT=9000\nDIFY_API_KEYS=app-a:chat, app-b\n")
    settings = load_settings(str(dotenv))
    assert settings.timeout == 10.0
    assert settings.server_port == 9000
    assert settings.dify_api_keys == (DifyAppKey(key="app-a", mode="chat"), DifyAppKey(key="app-b"))


def test_load_settings_environment_overrides_dotenv(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TIMEOUT=10\nSERVER_PORT=9000\nVALID_API_KEYS=from-dotenv\n")
    clean_env.setenv("TIMEOUT", "20")
    clean_env.setenv("VALID_API_KEYS", "from-env")
    settings = load_settings()  # `.env` in the working directory (tmp_path)
    assert settings.timeout == 20.0
    assert settings.server_port == 9000  # not in the environment: `.env` applies
    assert settings.valid_api_keys == ("from-env",)


def test_load_settings_without_dotenv(clean_env: pytest.MonkeyPatch) -> None:
    assert load_settings() == Settings()


def test_load_settings_bad_value_in_dotenv(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SERVER_PORT=70000\n")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value).startswith("SERVER_PORT:")


# --- create_app start-up checks -------------------------------------------------------------------------


def test_create_app_refuses_open_gateway_on_public_host(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("SERVER_HOST", ALL_INTERFACES)
    clean_env.setenv("VALID_API_KEYS", "")
    with pytest.raises(SystemExit) as info:
        opendify.create_app()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "VALID_API_KEYS" in err
    assert ALL_INTERFACES in err


def test_create_app_refuses_open_gateway_on_cli_host(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("SERVER_HOST", "127.0.0.1")
    clean_env.setattr(sys, "argv", ["litestar", "run", "--host", ALL_INTERFACES])
    with pytest.raises(SystemExit):
        opendify.create_app()
    assert "VALID_API_KEYS" in capsys.readouterr().err


def test_create_app_refuses_open_gateway_on_litestar_host(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("LITESTAR_HOST", "10.0.0.1")
    with pytest.raises(SystemExit):
        opendify.create_app()
    assert "10.0.0.1" in capsys.readouterr().err


def test_create_app_open_gateway_on_loopback_starts(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SERVER_HOST", "127.0.0.1")
    clean_env.setenv("VALID_API_KEYS", "")
    application = opendify.create_app()
    assert isinstance(application, Litestar)
    settings: Settings = application.state.settings
    assert settings.auth_required is False


def test_create_app_with_keys_may_listen_anywhere(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SERVER_HOST", ALL_INTERFACES)
    clean_env.setenv("VALID_API_KEYS", "sk-gateway")
    application = opendify.create_app()
    assert isinstance(application, Litestar)
    assert application.state.settings.valid_api_keys == ("sk-gateway",)


def test_create_app_bad_timeout_is_one_line_on_stderr(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("TIMEOUT", "abc")
    with pytest.raises(SystemExit) as info:
        opendify.create_app()
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.endswith("\n")
    assert "TIMEOUT" in captured.err
    assert "Traceback" not in captured.err


def test_create_app_with_explicit_settings_skips_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TIMEOUT", "abc")  # would fail if the environment were read
    application = opendify.create_app(Settings(timeout=3.0))
    assert application.state.settings.timeout == 3.0


def test_cors_is_off_by_default_and_answers_preflights_when_configured() -> None:
    preflight = {
        "Origin": "https://chat.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    with TestClient(opendify.create_app(Settings())) as client:
        assert "access-control-allow-origin" not in client.options("/v1/chat/completions", headers=preflight).headers
    settings = settings_from_mapping({"CORS_ALLOW_ORIGINS": "https://chat.example"})
    with TestClient(opendify.create_app(settings)) as client:
        response = client.options("/v1/chat/completions", headers=preflight)
        assert response.status_code in (200, 204)
        assert response.headers["access-control-allow-origin"] == "https://chat.example"
        assert "authorization" in response.headers["access-control-allow-headers"].lower()


@pytest.mark.parametrize("raw", ["http://admin:s3cret@dify.internal/v1", "https://token@dify.example/v1"])
def test_credentials_in_dify_api_base_are_refused_without_echoing_them(raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping({"DIFY_API_BASE": raw})
    message = str(info.value)
    assert message.startswith("DIFY_API_BASE:")
    assert "credentials" in message
    assert "s3cret" not in message and "token" not in message and "admin" not in message


def test_every_variable_is_documented_in_the_readme_and_the_example_env() -> None:
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    example = (root / ".env.example").read_text()
    for name in config._VARIABLES:
        assert f"| `{name}` |" in readme, name
        assert f"\n{name}=" in example, name


def test_the_example_env_is_a_valid_configuration() -> None:
    example = Path(__file__).resolve().parents[2] / ".env.example"
    settings_from_mapping({k: v for k, v in dotenv_values(example).items() if v is not None})


def test_dify_keys_take_the_new_agent_mode_and_per_app_options() -> None:
    settings = settings_from_mapping(
        {"DIFY_API_KEYS": "app-a:agent:id=dify-agent, app-w:workflow:input=question:output=answer, app-c:input=text"}
    )
    assert settings.dify_api_keys == (
        DifyAppKey(key="app-a", mode="agent", model_id="dify-agent"),
        DifyAppKey(key="app-w", mode="workflow", input_variable="question", output_key="answer"),
        DifyAppKey(key="app-c", input_variable="text"),
    )


def test_dify_files_url_is_an_http_url_and_optional() -> None:
    assert settings_from_mapping({}).dify_files_url is None
    assert settings_from_mapping({"DIFY_FILES_URL": "https://dify.example.com/"}).dify_files_url == (
        "https://dify.example.com"
    )
    with pytest.raises(ConfigError) as info:
        settings_from_mapping({"DIFY_FILES_URL": "dify.example.com"})
    assert str(info.value).startswith("DIFY_FILES_URL:")
