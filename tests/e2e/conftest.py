"""The gateway on a real port in front of the Dify double on another, driven by the official `openai` SDK."""

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import openai
import pytest

from app import create_app
from app.config import DifyAppKey, Settings
from app.services.pipeline import client_id_for, dify_user
from tests.dify_double import DifyAppDouble, DifyDouble, ServerThread

CLIENT_KEY = "sk-e2e-client"


def scoped(user: str, key: str = CLIENT_KEY) -> str:
    """The Dify `user` the gateway sends for a client's `user`: scoped to the client key."""
    return dify_user(user, client_id_for(key))


APPS = [
    DifyAppDouble(key="app-e2e-chat", name="realdify-chat", mode="chat"),
    DifyAppDouble(key="app-e2e-agent", name="realdify-agent", mode="agent-chat"),
    DifyAppDouble(key="app-e2e-flow", name="realdify-advanced-chat", mode="advanced-chat"),
    DifyAppDouble(key="app-e2e-team", name="team/assistant", mode="chat", report_mode=True),
    DifyAppDouble(key="app-e2e-dup", name="realdify-chat", mode="chat"),
    DifyAppDouble(key="app-e2e-workflow", name="realdify-workflow", mode="workflow"),
    DifyAppDouble(key="app-e2e-persona", name="persona-chat", mode="chat", input_variables=("system_prompt",)),
    DifyAppDouble(key="app-e2e-completion", name="realdify-completion", mode="completion"),
    DifyAppDouble(  # file settings as Dify 1.15 records them for the New Agent: the chat-only default, off
        key="app-e2e-new-agent",
        name="realdify-new-agent",
        mode="agent",
        report_mode=True,
        file_upload={"image": {"enabled": False, "number_limits": 3, "transfer_methods": ["remote_url", "local_file"]}},
    ),
    DifyAppDouble(key="app-e2e-agent-116", name="agent-1.16", mode="agent", report_mode=True, agent_1_16=True),
    DifyAppDouble(key="app-e2e-topic", name="topic-flow", mode="advanced-chat", required_inputs=("topic",)),
    DifyAppDouble(  # takes images, documents, audio, video and any other file (as Dify 1.x apps can be set up)
        key="app-e2e-files",
        name="files-flow",
        mode="advanced-chat",
        file_upload={
            "enabled": True,
            "allowed_file_types": ["image", "document", "audio", "video", "custom"],
            "allowed_file_extensions": [],
            "allowed_file_upload_methods": ["local_file", "remote_url"],
            "number_limits": 5,
        },
    ),
    DifyAppDouble(  # the upload feature off, in the older chat-only shape (Dify 1.15's recorded chat app)
        key="app-e2e-text-only",
        name="text-only",
        mode="chat",
        file_upload={"image": {"enabled": False, "number_limits": 3, "transfer_methods": ["remote_url", "local_file"]}},
    ),
    DifyAppDouble(key="app-e2e-voice", name="voice-chat", mode="chat", speech_to_text=True, text_to_speech=True),
    DifyAppDouble(  # a workflow whose `doc` input takes a document
        key="app-e2e-docflow",
        name="doc-workflow",
        mode="workflow",
        file_inputs=(
            {
                "file": {
                    "variable": "doc",
                    "label": "doc",
                    "type": "file",
                    "required": False,
                    "allowed_file_types": ["document"],
                    "allowed_file_extensions": [],
                    "allowed_file_upload_methods": ["local_file", "remote_url"],
                }
            },
        ),
    ),
]


@pytest.fixture(scope="session", params=["0.15.3", "1.15"])
def dify(request: pytest.FixtureRequest) -> Iterator[DifyDouble]:
    """The Dify double, as each generation behaves (the e2e tests run against both)."""
    double = DifyDouble(apps=APPS, slow_delay=0.2, generation=request.param)
    with ServerThread(double) as server:
        double.url = server.url
        yield double


@pytest.fixture(scope="session")
def gateway_url(dify: DifyDouble) -> Iterator[str]:
    settings = Settings(
        valid_api_keys=("sk-other", CLIENT_KEY),
        dify_api_keys=tuple(DifyAppKey(app.key) for app in APPS),
        dify_api_base=f"{dify.url}/v1",
        timeout=10,
    )
    with ServerThread(create_app(settings)) as server:
        yield server.url


@pytest.fixture
def client(gateway_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=20) as sdk:
        yield sdk


@pytest.fixture
async def async_client(gateway_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=f"{gateway_url}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=20) as sdk:
        yield sdk


@contextmanager
def own_gateway(dify: DifyDouble, **settings: Any) -> Iterator[str]:
    """A gateway of its own in front of the double (its own settings and conversation store); yields its URL."""
    config = Settings(
        valid_api_keys=(CLIENT_KEY,),
        dify_api_keys=tuple(DifyAppKey(app.key) for app in APPS),
        dify_api_base=f"{dify.url}/v1",
        **settings,
    )
    with ServerThread(create_app(config)) as server:
        yield server.url


@contextmanager
def own_client(dify: DifyDouble, **settings: Any) -> Iterator[openai.OpenAI]:
    """The SDK in front of a gateway of its own (`own_gateway`)."""
    with (
        own_gateway(dify, **settings) as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=20) as sdk,
    ):
        yield sdk


def chat_env(dify: DifyDouble, redis_url: str, **more: str) -> dict[str, str]:
    """The environment of a gateway process serving the double's chat app, sharing state through `redis_url`."""
    return {
        "VALID_API_KEYS": CLIENT_KEY,
        "DIFY_API_KEYS": "app-e2e-chat:chat",
        "DIFY_API_BASE": f"{dify.url}/v1",
        "REDIS_URL": redis_url,
        **more,
    }
