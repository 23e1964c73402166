"""Files a client sends (OpenAI `image_url`, `file` and `input_audio` parts), checked before Dify sees them. Pure.

Each part becomes a `SentFile`: a remote URL (passed to Dify as `remote_url`, never fetched), or bytes whose type
is sniffed from the bytes themselves, never taken from a `data:` header. A file is then checked against what the
app accepts (`file_upload` in `GET /parameters`, or a workflow file input's own settings) and the size limits:
anything Dify would drop silently or refuse is a 400 naming the part, before anything is uploaded.
"""

import base64
import binascii
import hashlib
import re
from typing import Any, Final, Literal

import msgspec

from app.errors import InvalidRequestError, PayloadTooLargeError
from app.schemas.openai import ChatMessage

FileType = Literal["image", "document", "audio", "video", "custom"]
FILE_TYPES: Final = ("image", "document", "audio", "video", "custom")
MB: Final = 1024 * 1024

# Dify's own extension lists (api/constants/__init__.py): what decides a file's type and size limit there
IMAGE_EXTENSIONS: Final = frozenset({"jpg", "jpeg", "png", "webp", "gif", "svg"})
VIDEO_EXTENSIONS: Final = frozenset({"mp4", "mov", "mpeg", "webm"})
AUDIO_EXTENSIONS: Final = frozenset({"mp3", "m4a", "wav", "amr", "mpga"})
DOCUMENT_EXTENSIONS: Final = frozenset(
    {"txt", "markdown", "md", "mdx", "pdf", "html", "htm", "xlsx", "xls", "vtt", "properties", "doc", "docx", "csv"}
    | {"eml", "msg", "pptx", "xml", "epub", "ppt", "json"}
)
_MIME: Final = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
    "svg": "image/svg+xml",
    "bmp": "image/bmp",
    "heic": "image/heic",
    "avif": "image/avif",
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "doc": "application/msword",
    "xls": "application/vnd.ms-excel",
    "ppt": "application/vnd.ms-powerpoint",
    "epub": "application/epub+zip",
    "txt": "text/plain",
    "md": "text/markdown",
    "csv": "text/csv",
    "html": "text/html",
    "json": "application/json",
    "xml": "application/xml",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "m4a": "audio/mp4",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
    "amr": "audio/amr",
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "webm": "video/webm",
    "mpeg": "video/mpeg",
    "zip": "application/zip",
}
_TEXT_EXTENSIONS: Final = frozenset({"txt", "markdown", "md", "mdx", "html", "htm", "vtt", "properties", "csv"}) | {
    "eml",
    "xml",
    "json",
}
_AUDIO_FORMATS: Final = {"wav": "wav", "mp3": "mp3", "mpeg": "mp3", "m4a": "m4a", "ogg": "ogg", "flac": "flac"}


class Sniffed(msgspec.Struct, frozen=True):
    kind: FileType
    extension: str
    mime_type: str


def _extension_of(filename: str | None) -> str:
    if not filename or "." not in filename:
        return ""
    return filename.rsplit(".", 1)[1].lower()


def _kind_of(extension: str) -> FileType:
    if extension in IMAGE_EXTENSIONS:
        return "image"
    if extension in AUDIO_EXTENSIONS:
        return "audio"
    if extension in VIDEO_EXTENSIONS:
        return "video"
    if extension in DOCUMENT_EXTENSIONS:
        return "document"
    return "custom"


def _magic(data: bytes, extension: str) -> str | None:  # noqa: C901, PLR0912  # one table, read top to bottom
    """The extension the bytes say they are, from their signature; None when they have none."""
    head = data[:16]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"RIFF") and data[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"BM") and len(data) > 26 and data[14] in (12, 40, 52, 56, 108, 124):
        return "bmp"
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf")):  # a text's byte order mark (UTF-16 or -8)
        return extension if extension in _TEXT_EXTENSIONS else "txt"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"#!AMR"):
        return "amr"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"M4A ", b"M4B "):
            return "m4a"
        if brand in (b"heic", b"heix", b"hevc", b"mif1", b"msf1"):
            return "heic"
        if brand in (b"avif", b"avis"):
            return "avif"
        return "mov" if brand == b"qt  " else "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"
    if head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return "mpeg"
    if head.startswith(b"PK\x03\x04"):  # a zip: an Office document or an EPUB, said by its name or its content
        if b"mimetypeapplication/epub+zip" in data[:100]:
            return "epub"
        if extension in ("docx", "xlsx", "pptx", "epub"):
            return extension
        for marker, found in ((b"word/", "docx"), (b"xl/", "xlsx"), (b"ppt/", "pptx")):
            if marker in data[:4096]:
                return found
        return "zip"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):  # the old Office format
        return extension if extension in ("doc", "xls", "ppt", "msg") else "doc"
    return None


_SVG = re.compile(rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*(?:<!DOCTYPE svg[^>]*>\s*)?<svg[\s>]", re.S | re.I)


def sniff(data: bytes, filename: str | None = None) -> Sniffed:
    """A file's type from its bytes; text (which has no signature) by the name it came with, else plain text."""
    extension = _extension_of(filename)
    found = _magic(data, extension)
    if found is None and _SVG.match(data[:2048]):
        found = "svg"
    if found is None:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            found = extension or "bin"
        else:
            found = extension if extension in _TEXT_EXTENSIONS else "txt"
    return Sniffed(_kind_of(found), found, _MIME.get(found, "application/octet-stream"))


# --- what the app accepts ---------------------------------------------------------------------------------------


class FileRule(msgspec.Struct, frozen=True, kw_only=True):
    """What a destination accepts: the app's `file_upload` feature, or one workflow file input."""

    types: frozenset[str] = frozenset(FILE_TYPES)
    extensions: frozenset[str] = frozenset()  # for `custom`: lower-case, no dot
    methods: frozenset[str] = frozenset({"local_file", "remote_url"})
    count: int | None = None


class FilePolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How an app takes files. `rule` None: it takes none (Dify ignores files when the feature is off). `known`
    False: `/parameters` could not be read, so nothing is refused here (Dify decides)."""

    known: bool = False
    rule: FileRule | None = FileRule()
    sizes: dict[str, int] = msgspec.field(default_factory=dict)  # bytes, by type; "document" for all the others


UNKNOWN_POLICY: Final = FilePolicy()


def _strings(value: Any) -> frozenset[str]:
    return frozenset(str(v).lower().lstrip(".") for v in value) if isinstance(value, list) else frozenset()


def rule_of(spec: dict[str, Any], count: Any = None) -> FileRule:
    types = _strings(spec.get("allowed_file_types")) & set(FILE_TYPES)
    methods = _strings(spec.get("allowed_file_upload_methods") or spec.get("transfer_methods"))
    return FileRule(
        types=types or frozenset(FILE_TYPES),
        extensions=_strings(spec.get("allowed_file_extensions")),
        methods=methods or frozenset({"local_file", "remote_url"}),
        count=count if isinstance(count, int) and count > 0 else None,
    )


def policy_of(file_upload: dict[str, Any] | None, system: dict[str, Any] | None) -> FilePolicy:
    """`file_upload` in both its shapes: the current one (`enabled`, `allowed_file_types`, ...) and the chat-only
    one of older apps (`image: {enabled, transfer_methods, number_limits}`)."""
    sizes: dict[str, int] = {}
    for kind, name in (("image", "image_"), ("video", "video_"), ("audio", "audio_"), ("document", "")):
        value = (system or {}).get(f"{name}file_size_limit")
        if isinstance(value, int | float) and value > 0:
            sizes[kind] = int(value * MB)
    upload = file_upload or {}
    if "enabled" in upload:
        rule = rule_of(upload, upload.get("number_limits")) if upload.get("enabled") else None
    else:
        image: dict[str, Any] = upload.get("image") if isinstance(upload.get("image"), dict) else {}  # type: ignore[assignment]
        enabled = bool(image.get("enabled"))
        rule = rule_of({**image, "allowed_file_types": ["image"]}, image.get("number_limits")) if enabled else None
    return FilePolicy(known=True, rule=rule, sizes=sizes)


# --- the files a message holds ----------------------------------------------------------------------------------


class SentFile(msgspec.Struct, frozen=True, kw_only=True):
    """One file part of the message: `where` names it for errors (`messages[2].content[1]`)."""

    where: str
    kind: FileType
    url: str | None = None  # a remote file (never fetched)
    data: bytes = b""
    filename: str = ""
    mime_type: str = ""

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data if self.url is None else self.url.encode()).hexdigest()


def _invalid(where: str, message: str) -> InvalidRequestError:
    return InvalidRequestError(f"{where}: {message}", param=where, code="invalid_file")


def _decoded(where: str, payload: str) -> bytes:
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _invalid(where, "the file is not valid base64") from exc


def _data_url(where: str, url: str) -> bytes:
    header, comma, payload = url.partition(",")
    if not comma or ";base64" not in header:
        raise _invalid(where, "inline files must be base64 `data:` URLs (data:<type>;base64,...)")
    return _decoded(where, payload)


def _named(where: str, data: bytes, filename: str | None, index: int) -> SentFile:
    if not data:
        raise _invalid(where, "the file is empty")
    sniffed = sniff(data, filename)
    name = filename.replace("/", "_").replace("\\", "_")[:200] if filename else f"file-{index}.{sniffed.extension}"
    if filename and _extension_of(filename) != sniffed.extension and sniffed.extension != "txt":
        # the name says one type, the bytes another: Dify judges by the extension, so it must tell the truth
        name = f"{name.rsplit('.', 1)[0] if '.' in name else name}.{sniffed.extension}"
    return SentFile(where=where, kind=sniffed.kind, data=data, filename=name, mime_type=sniffed.mime_type)


def _part_file(where: str, part: Any, index: int) -> SentFile | None:
    if part.image_url is not None:
        url = part.image_url.url
        if not url.startswith("data:"):
            return SentFile(where=where, kind="image", url=url)
        sent = _named(where, _data_url(where, url), None, index)
        if not sent.mime_type.startswith("image/"):
            raise _invalid(where, f"an image_url part must hold an image; its bytes are {sent.mime_type}")
        return sent
    if part.type == "file" and part.file is not None:
        if part.file.file_data is None:
            raise _invalid(where, "file ids are not supported (this gateway keeps no files): send `file_data`")
        payload = part.file.file_data
        data = _data_url(where, payload) if payload.startswith("data:") else _decoded(where, payload)
        return _named(where, data, part.file.filename, index)
    if part.type == "input_audio" and part.input_audio is not None:
        declared = _AUDIO_FORMATS.get(part.input_audio.format.lower(), part.input_audio.format.lower())
        sent = _named(where, _decoded(where, part.input_audio.data), f"audio-{index}.{declared}", index)
        if sent.kind != "audio" and sent.mime_type != "audio/ogg":
            raise _invalid(where, f"an input_audio part must hold audio; its bytes are {sent.mime_type}")
        return sent
    return None


def files_of(message: ChatMessage, position: int) -> list[SentFile]:
    """The files in the message at `messages[position]`, decoded and sniffed (a bad part is a 400)."""
    if not isinstance(message.content, list):
        return []
    files: list[SentFile] = []
    for index, part in enumerate(message.content):
        sent = _part_file(f"messages[{position}].content[{index}]", part, len(files) + 1)
        if sent is not None:
            files.append(sent)
    return files


# --- checks -----------------------------------------------------------------------------------------------------


def _accepted(rule: FileRule) -> str:
    kinds = sorted(rule.types - {"custom"})
    if "custom" in rule.types and rule.extensions:
        kinds.append("." + ", .".join(sorted(rule.extensions)))
    return ", ".join(kinds) or "no files"


def check(files: list[SentFile], policy: FilePolicy, *, max_bytes: int, app: str) -> list[str]:
    """Every file fits what the app accepts, or a 400 (413 for size) names the part, before anything is sent.
    Returns the type each file goes to Dify as: its own, or `custom` where only that bucket takes it."""
    if not files:
        return []
    for sent in files:
        if len(sent.data) > max_bytes:
            raise PayloadTooLargeError(
                f"{sent.where}: the file is {len(sent.data)} bytes, over this gateway's limit of {max_bytes} bytes",
                param=sent.where,
                code="file_too_large",
            )
    if not policy.known:
        return [sent.kind for sent in files]
    rule = policy.rule
    if rule is None:
        raise _invalid(files[0].where, f"the app `{app}` takes no files (its file upload feature is off)")
    if rule.count is not None and len(files) > rule.count:
        raise _invalid(files[rule.count].where, f"the app `{app}` takes at most {rule.count} files a message")
    return [check_one(sent, rule, policy, app=app) for sent in files]


def check_one(sent: SentFile, rule: FileRule, policy: FilePolicy, *, app: str) -> str:
    extension = _extension_of(sent.filename) if sent.url is None else ""
    # as Dify checks it: a typed file by its type; any file as `custom` when its extension is listed (or none are)
    custom = "custom" in rule.types and (not rule.extensions or extension in rule.extensions)
    if not custom and (sent.kind == "custom" or sent.kind not in rule.types):
        shown = sent.kind if sent.url is not None or sent.kind != "custom" else f"custom ({sent.mime_type})"
        raise _invalid(sent.where, f"the app `{app}` accepts {_accepted(rule)} files, not {shown}")
    method = "remote_url" if sent.url is not None else "local_file"
    if method not in rule.methods:
        how = "uploaded files" if method == "local_file" else "files by URL"
        raise _invalid(sent.where, f"the app `{app}` does not accept {how}")
    limit = policy.sizes.get(sent.kind) or policy.sizes.get("document")
    if limit is not None and sent.url is None and len(sent.data) > limit:
        raise PayloadTooLargeError(
            f"{sent.where}: the {sent.kind} is {len(sent.data)} bytes, over the app's limit of {limit} bytes",
            param=sent.where,
            code="file_too_large",
        )
    return sent.kind if sent.kind in rule.types and sent.kind != "custom" else "custom"
