"""Files in through the official SDK: inline and remote images, a PDF `file` part, an `input_audio` part, a workflow's
file input; the same image twice is uploaded once; what an app would drop is a `BadRequestError` that says why, with
nothing uploaded; conversations tell files apart by content."""

import base64
import uuid
from typing import Any

import openai
import pytest

from tests.dify_double import DifyDouble
from tests.e2e.conftest import own_client, scoped

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(32)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(16)
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80>\x00\x00\x02\x00\x10\x00data"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _image(data: bytes = PNG, mime: str = "image/png") -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{_b64(data)}"}}


def _pdf(name: str = "report.pdf") -> dict[str, Any]:
    return {"type": "file", "file": {"filename": name, "file_data": f"data:application/pdf;base64,{_b64(PDF)}"}}


def _ask(client: openai.OpenAI, model: str, user: str, *parts: dict[str, Any], text: str = "look") -> str:
    content: Any = [{"type": "text", "text": text}, *parts]
    completion = client.chat.completions.create(model=model, user=user, messages=[{"role": "user", "content": content}])
    return completion.choices[0].message.content or ""


def _uploads(dify: DifyDouble, user: str) -> list[Any]:
    return [upload for upload in dify.uploads.values() if upload.user == scoped(user)]


def _runs(dify: DifyDouble, user: str) -> list[dict[str, Any]]:
    return [
        r.body
        for r in dify.requests
        if r.path in ("/v1/chat-messages", "/v1/workflows/run") and isinstance(r.body, dict)
        if r.body.get("user") == scoped(user)
    ]


def test_each_part_kind_reaches_dify_as_the_file_it_is(client: openai.OpenAI, dify: DifyDouble) -> None:
    user = f"files-{uuid.uuid4()}"
    remote = {"type": "image_url", "image_url": {"url": "https://img.example/cat.png"}}
    audio = {"type": "input_audio", "input_audio": {"data": _b64(WAV), "format": "wav"}}
    video = {"type": "file", "file": {"filename": "clip.mp4", "file_data": _b64(MP4)}}
    answer = _ask(client, "files-flow", user, _image(JPEG, "image/png"), remote, _pdf(), audio, video)
    uploads = _uploads(dify, user)
    assert [(u.filename, u.mime_type, u.data) for u in uploads] == [
        ("file-1.jpg", "image/jpeg", JPEG),  # sniffed from the bytes, not the data: URL's header
        ("report.pdf", "application/pdf", PDF),
        ("audio-4.wav", "audio/wav", WAV),
        ("clip.mp4", "video/mp4", MP4),
    ]
    [run] = _runs(dify, user)
    assert [(f["type"], f["transfer_method"]) for f in run["files"]] == [
        ("image", "local_file"),
        ("image", "remote_url"),
        ("document", "local_file"),
        ("audio", "local_file"),
        ("video", "local_file"),
    ]
    assert run["query"] == "look"  # no placeholders in the current turn
    # the app saw them (the double echoes the files it was given)
    assert "image:local_file:file-1.jpg image:remote_url:https://img.example/cat.png" in answer
    assert "document:local_file:report.pdf audio:local_file:audio-4.wav" in answer


def test_the_same_image_twice_is_uploaded_once(client: openai.OpenAI, dify: DifyDouble) -> None:
    user = f"files-{uuid.uuid4()}"
    _ask(client, "files-flow", user, _image(), text="first")
    _ask(client, "files-flow", user, _image(), text="again")
    assert len(_uploads(dify, user)) == 1
    first, second = _runs(dify, user)
    assert first["files"] == second["files"]
    other = f"files-{uuid.uuid4()}"  # another user: Dify only lets an upload's own user reference it
    _ask(client, "files-flow", other, _image(), text="mine")
    assert len(_uploads(dify, other)) == 1


def test_a_document_to_an_app_that_takes_only_images_is_a_bad_request(client: openai.OpenAI, dify: DifyDouble) -> None:
    user = f"files-{uuid.uuid4()}"
    with pytest.raises(openai.BadRequestError) as caught:
        _ask(client, "realdify-chat", user, _pdf())
    assert "messages[0].content[1]: the app `realdify-chat` accepts image files, not document" in str(caught.value)
    assert _uploads(dify, user) == [] and _runs(dify, user) == []


def test_an_image_to_an_app_with_file_upload_off_is_a_bad_request(client: openai.OpenAI, dify: DifyDouble) -> None:
    user = f"files-{uuid.uuid4()}"
    with pytest.raises(openai.BadRequestError) as caught:
        _ask(client, "text-only", user, {"type": "image_url", "image_url": {"url": "https://img.example/a.png"}})
    assert "takes no files (its file upload feature is off)" in str(caught.value)
    assert _runs(dify, user) == []


@pytest.mark.parametrize(
    ("part", "why"),
    [
        ({"type": "image_url", "image_url": {"url": "data:image/png;base64,%%%"}}, "not valid base64"),
        (_image(PDF, "image/png"), "must hold an image"),
        ({"type": "file", "file": {"file_id": "file-abc123"}}, "file ids are not supported"),
    ],
)
def test_a_bad_part_is_a_bad_request_and_nothing_is_uploaded(
    client: openai.OpenAI, dify: DifyDouble, part: dict[str, Any], why: str
) -> None:
    user = f"files-{uuid.uuid4()}"
    with pytest.raises(openai.BadRequestError) as caught:
        _ask(client, "files-flow", user, _image(), part)
    assert why in str(caught.value) and "messages[0].content[2]" in str(caught.value)
    assert _uploads(dify, user) == [] and _runs(dify, user) == []  # the good image before it was not uploaded


def test_a_file_dify_refuses_is_a_bad_request_naming_it(client: openai.OpenAI, dify: DifyDouble) -> None:
    user = f"files-{uuid.uuid4()}"
    tool = {"type": "file", "file": {"filename": "tool.exe", "file_data": _b64(b"MZ\x90\x00\x03\x00\xff\xfe")}}
    with pytest.raises(openai.BadRequestError) as caught:
        _ask(client, "files-flow", user, tool)
    assert "Dify refused the file `tool.exe`" in str(caught.value)
    assert "not allowed for security reasons" in str(caught.value)


def test_a_file_over_the_gateways_limit_is_413(dify: DifyDouble) -> None:
    user = f"files-{uuid.uuid4()}"
    with own_client(dify, max_file_bytes=16) as small, pytest.raises(openai.APIStatusError) as caught:
        _ask(small, "files-flow", user, _pdf())
    assert caught.value.status_code == 413
    assert _uploads(dify, user) == []


def test_a_workflow_file_input_takes_the_document(client: openai.OpenAI, dify: DifyDouble) -> None:
    user = f"files-{uuid.uuid4()}"
    answer = _ask(client, "doc-workflow", user, _pdf(), text="summarise")
    [run] = _runs(dify, user)
    assert run["inputs"]["doc"]["type"] == "document" and run["inputs"]["doc"]["transfer_method"] == "local_file"
    assert "files" not in run
    assert "document:local_file:report.pdf" in answer
    with pytest.raises(openai.BadRequestError) as caught:  # the input's own settings: documents only
        _ask(client, "doc-workflow", user, _image())
    assert "accepts document files, not image" in str(caught.value)


def test_a_conversation_tells_images_apart_by_content(client: openai.OpenAI, dify: DifyDouble) -> None:
    user = f"files-{uuid.uuid4()}"
    asked: list[Any] = [{"role": "user", "content": [{"type": "text", "text": "what is this?"}, _image()]}]
    first = client.chat.completions.with_raw_response.create(model="files-flow", user=user, messages=asked)
    answer = first.parse().choices[0].message.content
    conversation = first.headers["x-dify-conversation-id"]
    follow_up = [*asked, {"role": "assistant", "content": answer}, {"role": "user", "content": "and its colour?"}]
    same = client.chat.completions.with_raw_response.create(model="files-flow", user=user, messages=follow_up)
    assert same.headers["x-dify-conversation-id"] == conversation  # the same image sent again: the same chat
    swapped = [
        {"role": "user", "content": [{"type": "text", "text": "what is this?"}, _image(JPEG, "image/jpeg")]},
        *follow_up[1:],
    ]
    other = client.chat.completions.with_raw_response.create(model="files-flow", user=user, messages=swapped)
    assert other.headers["x-dify-conversation-id"] != conversation  # another image: not that conversation
    assert len(_uploads(dify, user)) == 1  # earlier turns' files are never uploaded again


def test_an_upload_dify_forgot_is_uploaded_again(client: openai.OpenAI, dify: DifyDouble) -> None:
    """The cache still has the upload id, Dify no longer has the file ("Invalid upload file"): the turn is run again
    with a fresh upload, never failed."""
    user = f"files-{uuid.uuid4()}"
    _ask(client, "files-flow", user, _image(), text="first")
    [forgotten] = [upload_id for upload_id, upload in dify.uploads.items() if upload.user == scoped(user)]
    del dify.uploads[forgotten]
    answer = _ask(client, "files-flow", user, _image(), text="again")
    assert "image:local_file:file-1.png" in answer
    assert len(_uploads(dify, user)) == 1  # uploaded anew
    _, refused, again = _runs(dify, user)
    assert refused["files"][0]["upload_file_id"] == forgotten != again["files"][0]["upload_file_id"]


def test_the_new_agent_takes_files_whatever_its_default_file_settings_say(
    client: openai.OpenAI, dify: DifyDouble
) -> None:
    """Dify appends a New Agent's files to its prompt: its (chat-only, off) settings do not refuse them."""
    user = f"files-{uuid.uuid4()}"
    _ask(client, "realdify-new-agent", user, _pdf())
    [run] = _runs(dify, user)
    assert run["files"][0]["type"] == "document"


def test_the_same_bytes_under_another_name_are_another_upload(client: openai.OpenAI, dify: DifyDouble) -> None:
    """Dify types an upload by its extension: the name is part of what is reused."""
    user = f"files-{uuid.uuid4()}"
    _ask(client, "files-flow", user, _pdf("a.pdf"))
    _ask(client, "files-flow", user, _pdf("b.pdf"))
    assert sorted(u.filename for u in _uploads(dify, user)) == ["a.pdf", "b.pdf"]


def test_housekeeping_is_answered_from_the_text_and_uploads_nothing(dify: DifyDouble) -> None:
    """NextChat's memory summary after a turn with an image, sent to a text-only task app."""
    user = f"files-{uuid.uuid4()}"
    messages: Any = [
        {"role": "user", "content": [{"type": "text", "text": "what is this?"}, _image()]},
        {"role": "assistant", "content": "A cat."},
        {
            "role": "system",
            "content": "Summarize the discussion briefly in 200 words or less to use as a prompt for future context.",
        },
    ]
    with own_client(dify, task_model="text-only") as sdk:
        answer = sdk.chat.completions.create(model="files-flow", user=user, messages=messages)
    assert answer.choices[0].message.content
    assert _uploads(dify, user) == []
    [run] = _runs(dify, user)
    assert "files" not in run
