"""Files in, replayed against the recorded traffic of both Dify generations: uploads (`*-files-upload*`), the runs
that reference them (`*-file-local-*`, `*-file-remote-*`, a text document on 1.15), the refused upload id, and the
apps' `file_upload` settings from their recorded `/parameters`."""

import base64
import json
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from tests.service.modes import GENERATIONS, PATHS, modes_client, reply, sent_bodies, streamed
from tests.service.replay import CLIENT_HEADERS, DIFY_BASE, dify_auth
from tests.traces import load

pytestmark = pytest.mark.anyio

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _recorded_run(name: str) -> dict[str, Any]:
    """The JSON body of a recorded run request (the gateway must send the same `files`)."""
    body: dict[str, Any] = json.loads(load(name).request_body)
    return body


def _upload_answer(dify: HTTPXMock, name: str, mode: str) -> None:
    trace = load(name)
    dify.add_response(
        method="POST",
        url=f"{DIFY_BASE}/files/upload",
        match_headers=dify_auth(mode),
        status_code=trace.status,
        headers={"content-type": "application/json"},
        content=trace.body,
    )


def _uploads(dify: HTTPXMock) -> list[bytes]:
    return [r.content for r in dify.get_requests(method="POST", url=f"{DIFY_BASE}/files/upload")]


async def _ask(client: Any, model_mode: str, content: list[Any], *, stream: bool = False) -> Any:
    models = (await client.get("/v1/models", headers=CLIENT_HEADERS)).json()["data"]
    model = next(m["id"] for m in models if m["mode"] == model_mode)
    body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": content}]}
    return await client.post("/v1/chat/completions", headers=CLIENT_HEADERS, json=body)


@pytest.mark.parametrize(
    ("mode", "upload", "run"),
    [
        ("chat", "chat-files-upload", "chat-file-local-blocking"),
        ("advanced-chat", "advanced-chat-files-upload", "advanced-chat-file-local-blocking"),
        ("completion", "completion-files-upload", "completion-file-local-blocking"),
        ("workflow", "workflow-files-upload", "workflow-file-local-blocking"),
    ],
)
async def test_an_inline_image_is_uploaded_and_sent_as_the_recorded_local_file(
    dify: HTTPXMock, mode: str, upload: str, run: str
) -> None:
    _upload_answer(dify, upload, mode)
    reply(dify, load(run), mode)
    recorded = _recorded_run(run)
    text = recorded.get("query") or recorded["inputs"]["query"]
    content = [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": _data_url("image/png", PNG)}}]
    async with modes_client(dify, "", (mode,)) as client:
        response = await _ask(client, mode, content)
    assert response.status_code == 200, response.text
    [uploaded] = _uploads(dify)
    assert PNG in uploaded and b'filename="file-1.png"' in uploaded and b"Content-Type: image/png" in uploaded
    [sent] = sent_bodies(dify, mode)
    assert sent["files"] == recorded["files"]


@pytest.mark.parametrize(
    ("mode", "run"),
    [
        ("chat", "chat-file-remote-blocking"),
        ("advanced-chat", "advanced-chat-file-remote-streaming"),
        ("workflow", "workflow-file-remote-streaming"),
    ],
)
async def test_a_remote_image_is_sent_as_the_recorded_remote_url_and_never_fetched(
    dify: HTTPXMock, mode: str, run: str
) -> None:
    reply(dify, load(run), mode)
    recorded = _recorded_run(run)
    [file] = recorded["files"]
    text = recorded.get("query") or recorded["inputs"]["query"]
    content = [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": file["url"]}}]
    async with modes_client(dify, "", (mode,)) as client:
        response = await _ask(client, mode, content, stream=recorded["response_mode"] == "streaming")
    assert response.status_code == 200, response.text
    assert _uploads(dify) == []
    [sent] = sent_bodies(dify, mode)
    assert sent["files"] == recorded["files"]


@pytest.mark.parametrize("mode", ["advanced-chat", "workflow"])
async def test_a_text_document_reaches_current_dify_as_the_recorded_document(httpx_mock: HTTPXMock, mode: str) -> None:
    dify = httpx_mock  # (the `dify` fixture would answer /parameters as 0.15.3 first)
    prefix = GENERATIONS["1.15"]
    run = f"{prefix}{mode}-file-document-streaming"
    _upload_answer(dify, f"{prefix}{mode}-files-upload-2", mode)
    reply(dify, load(run), mode)
    recorded = _recorded_run(run)
    text = recorded.get("query") or recorded["inputs"]["query"]
    document = {
        "type": "file",
        "file": {"filename": "notes.txt", "file_data": base64.b64encode(b"Tides rise.").decode()},
    }
    async with modes_client(dify, prefix, (mode,)) as client:
        response = await _ask(client, mode, [{"type": "text", "text": text}, document], stream=True)
    assert response.status_code == 200, response.text
    answer, _ = streamed(response)
    assert answer
    [uploaded] = _uploads(dify)
    assert b'filename="notes.txt"' in uploaded and b"Content-Type: text/plain" in uploaded
    [sent] = sent_bodies(dify, mode)
    assert [f["type"] for f in sent["files"]] == [f["type"] for f in recorded["files"]] == ["document"]


@pytest.mark.parametrize("mode", ["chat", "advanced-chat"])
async def test_an_upload_id_dify_does_not_know_is_a_400_with_difys_message(dify: HTTPXMock, mode: str) -> None:
    _upload_answer(dify, f"{mode}-files-upload", mode)
    reply(dify, load(f"{mode}-err-bad-upload-file-id"), mode)
    content: list[dict[str, Any]] = [
        {"type": "text", "text": "hi"},
        {"type": "image_url", "image_url": {"url": _data_url("image/png", PNG)}},
    ]
    async with modes_client(dify, "", (mode,)) as client:
        response = await _ask(client, mode, content)
    assert response.status_code == 400
    assert "Invalid upload file" in response.json()["error"]["message"]


async def test_a_workflow_upload_dify_refuses_names_the_part(httpx_mock: HTTPXMock) -> None:
    """Dify's own refusal of an upload (recorded: `no_file_uploaded`) names the part, as a 400."""
    dify = httpx_mock
    _upload_answer(dify, "dify-1.15/workflow-err-files-upload-no-file", "workflow")
    document = {"type": "file", "file": {"filename": "r.pdf", "file_data": base64.b64encode(PDF).decode()}}
    async with modes_client(dify, "dify-1.15/", ("workflow",)) as client:
        response = await _ask(client, "workflow", [{"type": "text", "text": "read"}, document])
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "messages[0].content[1]"
    assert error["message"].startswith("messages[0].content[1]: Dify refused the file `r.pdf`")
    assert not dify.get_requests(method="POST", url=DIFY_BASE + PATHS["workflow"])


@pytest.mark.parametrize(
    ("generation", "mode", "part", "why"),
    [
        # 0.15.3's recorded apps take images only
        ("0.15.3", "chat", {"type": "file", "file": {"filename": "r.pdf", "file_data": ""}}, "accepts image files"),
        ("0.15.3", "workflow", {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}, "accepts image"),
        # 1.15's recorded chat app has the upload feature off (the old chat-only shape, `image.enabled: false`)
        ("1.15", "chat", {"type": "image_url", "image_url": {"url": "https://x.example/a.png"}}, "takes no files"),
    ],
)
async def test_a_file_the_app_would_drop_is_a_400_before_dify(
    httpx_mock: HTTPXMock, generation: str, mode: str, part: dict[str, Any], why: str
) -> None:
    dify = httpx_mock  # only this generation's recorded apps
    if part["type"] == "file":
        part = {"type": "file", "file": {**part["file"], "file_data": base64.b64encode(PDF).decode()}}
    if part["type"] == "input_audio":
        wav = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(24)
        part = {"type": "input_audio", "input_audio": {"data": base64.b64encode(wav).decode(), "format": "wav"}}
    async with modes_client(dify, GENERATIONS[generation], (mode,)) as client:
        response = await _ask(client, mode, [{"type": "text", "text": "look"}, part])
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert why in error["message"] and error["param"] == "messages[0].content[1]"
    assert _uploads(dify) == [] and sent_bodies(dify, mode) == []
