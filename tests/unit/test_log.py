"""The JSON log line: its timestamp (cached per second) and its fields."""

import json
import logging

from app.log import JSONFormatter


def _record(created: float, **extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": "opendify.access", "levelno": 20, "levelname": "INFO", "msg": "request"})
    record.created, record.msecs = created, (created - int(created)) * 1000
    record.__dict__.update(extra)
    return record


def test_each_line_has_its_own_time_to_the_millisecond_across_seconds() -> None:
    formatter = JSONFormatter()
    stamps = [json.loads(formatter.format(_record(t)))["ts"] for t in (1795462020.125, 1795462020.875, 1795462021.0625)]
    assert stamps == ["2026-11-23T19:27:00.125Z", "2026-11-23T19:27:00.875Z", "2026-11-23T19:27:01.062Z"]


def test_extra_fields_are_kept_and_odd_values_shown_as_text() -> None:
    line = json.loads(JSONFormatter().format(_record(1795462020.5, status=200, model="bench", odd={"a": 1})))
    assert line["level"] == "info" and line["logger"] == "opendify.access" and line["msg"] == "request"
    assert line["status"] == 200 and line["model"] == "bench" and line["odd"] == "{'a': 1}"
    assert "process" not in line and "thread" not in line and "funcName" not in line
