"""Files in: type sniffing, the apps' file settings in both shapes, the parts of a message, and the checks."""

import base64
import json
from typing import Any

import msgspec
import pytest

from app.errors import InvalidRequestError, PayloadTooLargeError
from app.schemas.openai import ChatMessage
from app.services.inputs.files import MB, FilePolicy, FileRule, check, files_of, policy_of, sniff
from tests.traces import load

PNG = b"\x89PNG\r\n\x1a\n" + bytes(24)
JPEG = b"\xff\xd8\xff\xe0" + bytes(20)
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(20)
MP3 = b"ID3\x04\x00" + bytes(20)
MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(12)
DOCX = b"PK\x03\x04" + bytes(26) + b"word/document.xml"


@pytest.mark.parametrize(
    ("data", "filename", "kind", "extension", "mime"),
    [
        (PNG, None, "image", "png", "image/png"),
        (JPEG, "photo.png", "image", "jpg", "image/jpeg"),  # the bytes win over the name
        (b"GIF89a" + bytes(10), None, "image", "gif", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", None, "image", "webp", "image/webp"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', None, "image", "svg", "image/svg+xml"),
        (PDF, "report", "document", "pdf", "application/pdf"),
        (DOCX, None, "document", "docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        (b"a,b\n1,2\n", "table.csv", "document", "csv", "text/csv"),
        (b"# Title\n", "notes.md", "document", "md", "text/markdown"),
        (b"just text", None, "document", "txt", "text/plain"),
        (WAV, None, "audio", "wav", "audio/wav"),
        (MP3, None, "audio", "mp3", "audio/mpeg"),
        (b"\x00\x00\x00\x20ftypM4A " + bytes(8), None, "audio", "m4a", "audio/mp4"),
        (MP4, None, "video", "mp4", "video/mp4"),
        (b"\x1a\x45\xdf\xa3" + bytes(12), None, "video", "webm", "video/webm"),
        (b"MZ\x90\x00\x03\x00\xff\xfe", "tool.exe", "custom", "exe", "application/octet-stream"),
    ],
)
def test_the_type_is_sniffed_from_the_bytes(
    data: bytes, filename: str | None, kind: str, extension: str, mime: str
) -> None:
    sniffed = sniff(data, filename)
    assert (sniffed.kind, sniffed.extension, sniffed.mime_type) == (kind, extension, mime)


def test_both_recorded_file_upload_shapes_are_read() -> None:
    current = load("dify-1.15/advanced-chat-parameters").json()
    policy = policy_of(current["file_upload"], current["system_parameters"])
    assert policy.rule is not None and policy.rule.types == {"image", "document"} and policy.rule.count == 3
    assert policy.sizes == {"image": 10 * MB, "video": 100 * MB, "audio": 50 * MB, "document": 15 * MB}
    old_off = load("dify-1.15/chat-parameters").json()  # the chat-only shape, images off
    assert policy_of(old_off["file_upload"], old_off["system_parameters"]).rule is None
    old_on = load("chat-parameters").json()  # 0.15.3: both shapes, images on
    rule = policy_of(old_on["file_upload"], None).rule
    assert rule is not None and rule.types == {"image"}
    assert policy_of({"image": {"enabled": True, "number_limits": 2}}, None).rule == FileRule(
        types=frozenset({"image"}), count=2
    )
    assert policy_of({"enabled": False, "allowed_file_types": ["image"]}, None).rule is None


def _message(*parts: dict[str, Any]) -> ChatMessage:
    return msgspec.json.decode(json.dumps({"role": "user", "content": [*parts]}), type=ChatMessage)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_the_parts_of_a_message_become_files_named_and_typed() -> None:
    message = _message(
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "https://img.example/a.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + _b64(JPEG)}},
        {"type": "file", "file": {"filename": "report.pdf", "file_data": "data:application/pdf;base64," + _b64(PDF)}},
        {"type": "file", "file": {"filename": "q.docx", "file_data": _b64(DOCX)}},
        {"type": "input_audio", "input_audio": {"data": _b64(WAV), "format": "wav"}},
        {"type": "file", "file": {"filename": "cat.pdf", "file_data": _b64(PNG)}},  # an image sent as a file
    )
    files = files_of(message, 3)
    assert [(f.where, f.kind, f.url, f.filename, f.mime_type) for f in files] == [
        ("messages[3].content[1]", "image", "https://img.example/a.png", "", ""),
        ("messages[3].content[2]", "image", None, "file-2.jpg", "image/jpeg"),  # sniffed, not the header's png
        ("messages[3].content[3]", "document", None, "report.pdf", "application/pdf"),
        (
            "messages[3].content[4]",
            "document",
            None,
            "q.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        ("messages[3].content[5]", "audio", None, "audio-5.wav", "audio/wav"),
        ("messages[3].content[6]", "image", None, "cat.png", "image/png"),  # the name made to tell the truth
    ]


@pytest.mark.parametrize(
    ("part", "message"),
    [
        ({"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}, "not valid base64"),
        ({"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}}, "must be base64"),
        ({"type": "image_url", "image_url": {"url": "data:image/png;base64," + _b64(PDF)}}, "must hold an image"),
        ({"type": "file", "file": {"file_id": "file-abc"}}, "file ids are not supported"),
        ({"type": "file", "file": {"filename": "x.pdf", "file_data": ""}}, "the file is empty"),
        ({"type": "input_audio", "input_audio": {"data": _b64(PDF), "format": "wav"}}, "must hold audio"),
    ],
)
def test_a_bad_part_is_a_400_naming_it(part: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        files_of(_message({"type": "text", "text": "x"}, part), 0)
    assert caught.value.param == "messages[0].content[1]"
    assert message in caught.value.message


IMAGES_ONLY = FilePolicy(known=True, rule=FileRule(types=frozenset({"image"}), count=2), sizes={"image": 100})


def _files(*parts: dict[str, Any]) -> list[Any]:
    return files_of(_message(*parts), 0)


def _image(data: bytes = PNG) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": "data:image/png;base64," + _b64(data)}}


def test_files_the_app_accepts_pass() -> None:
    check(_files(_image(), _image()), IMAGES_ONLY, max_bytes=MB, app="a")


@pytest.mark.parametrize(
    ("parts", "policy", "message"),
    [
        (
            [_image(), {"type": "file", "file": {"filename": "r.pdf", "file_data": _b64(PDF)}}],
            IMAGES_ONLY,
            "messages[0].content[1]: the app `a` accepts image files, not document",
        ),
        ([_image()], FilePolicy(known=True, rule=None), "messages[0].content[0]: the app `a` takes no files"),
        ([_image(), _image(), _image()], IMAGES_ONLY, "messages[0].content[2]: the app `a` takes at most 2 files"),
        (
            [{"type": "image_url", "image_url": {"url": "https://x.example/a.png"}}],
            FilePolicy(known=True, rule=FileRule(methods=frozenset({"local_file"}))),
            "does not accept files by URL",
        ),
        (
            [{"type": "file", "file": {"filename": "tool.exe", "file_data": _b64(b"MZ\x90\x00\xff\xfe")}}],
            FilePolicy(known=True, rule=FileRule(types=frozenset({"custom"}), extensions=frozenset({"zip"}))),
            "accepts .zip files, not custom",
        ),
    ],
)
def test_files_the_app_would_drop_are_a_400_naming_the_part(
    parts: list[dict[str, Any]], policy: FilePolicy, message: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        check(_files(*parts), policy, max_bytes=MB, app="a")
    assert message in caught.value.message


def test_sizes_over_the_apps_or_the_gateways_limit_are_a_413() -> None:
    with pytest.raises(PayloadTooLargeError, match="over the app's limit of 100 bytes"):
        check(_files(_image(PNG + bytes(100))), IMAGES_ONLY, max_bytes=MB, app="a")
    with pytest.raises(PayloadTooLargeError, match="over this gateway's limit of 10 bytes"):
        check(_files(_image()), FilePolicy(), max_bytes=10, app="a")


def test_an_app_whose_settings_are_unknown_is_left_to_dify() -> None:
    check(
        _files({"type": "file", "file": {"filename": "r.pdf", "file_data": _b64(PDF)}}),
        FilePolicy(),
        max_bytes=MB,
        app="a",
    )


def test_text_with_a_byte_order_mark_is_text_not_mp3() -> None:
    """UTF-16's BOM (FF FE) passes MPEG audio's frame sync: it is checked first."""
    assert sniff("name,city\n".encode("utf-16"), "people.csv").kind == "document"
    assert sniff("name,city\n".encode("utf-16"), "people.csv").extension == "csv"
    assert sniff("\ufeffhello".encode(), None).extension == "txt"


def test_heic_and_avif_are_images_the_app_may_not_take() -> None:
    heic = sniff(b"\x00\x00\x00\x18ftypheic" + bytes(12))
    assert (heic.kind, heic.mime_type) == ("custom", "image/heic")  # not in Dify's image extensions
    assert sniff(b"\x00\x00\x00\x1cftypavif" + bytes(12)).mime_type == "image/avif"
    [sent] = _files(
        {
            "type": "image_url",
            "image_url": {"url": "data:image/heic;base64," + _b64(b"\x00\x00\x00\x18ftypheic" + bytes(12))},
        }
    )
    with pytest.raises(InvalidRequestError, match=r"accepts image files, not custom \(image/heic\)"):
        check([sent], IMAGES_ONLY, max_bytes=MB, app="a")
