"""Recorded Dify 0.15.3 traffic (copied from shared/traces/dify-0.15.3 into tests/fixtures/traces)."""

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

TRACES = Path(__file__).parent / "fixtures" / "traces"


@dataclass(frozen=True)
class Trace:
    status: int
    headers: dict[str, str]
    body: bytes
    request_line: str = ""
    request_body: bytes = b""
    request_headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)

    def events(self) -> list[dict[str, Any]]:
        """The `data:` payloads of a recorded stream, in order."""
        return [json.loads(line[6:]) for line in self.body.decode().split("\n") if line.startswith("data: ")]

    def request_json(self) -> Any:
        return json.loads(self.request_body)


def _split_http(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    # the probe recordings end their header lines with \r\n, the others with \n
    head, body = [*re.split(rb"\r?\n\r?\n", raw, maxsplit=1), b""][:2]
    lines = head.decode().replace("\r\n", "\n").split("\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, body


@cache
def load(name: str) -> Trace:
    status_line, headers, body = _split_http((TRACES / f"{name}.txt").read_bytes())
    request_line, request_headers, request_body = _split_http((TRACES / f"{name}.request.txt").read_bytes())
    return Trace(
        status=int(status_line.split()[1]),
        headers=headers,
        body=body,
        request_line=request_line,
        request_body=request_body.strip(),
        request_headers=request_headers,
    )
