"""Every DIFY_TRANSPORT carries the same answers: the SDK through a gateway on each, in front of the double (both
Dify generations). The rest of the e2e suite runs on the default, `httptools`."""

import openai
import pytest

from tests.dify_double import DifyDouble
from tests.e2e.conftest import own_client

TRANSPORTS = ["httptools", "aiohttp", "httpx"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_whole_answers_streams_and_difys_errors_are_the_same_on_every_transport(
    dify: DifyDouble, transport: str
) -> None:
    with own_client(dify, dify_transport=transport) as sdk:
        whole = sdk.chat.completions.create(
            model="realdify-chat", messages=[{"role": "user", "content": f"hello over {transport}"}]
        )
        assert whole.choices[0].message.content
        assert whole.usage is not None and whole.usage.total_tokens > 0
        stream = sdk.chat.completions.create(
            model="realdify-chat",
            messages=[{"role": "user", "content": f"[chunks=40] streamed over {transport}"}],
            stream=True,
        )
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "".join(f"tok{i} " for i in range(40))
        assert chunks[-1].choices[0].finish_reason == "stop"
        with pytest.raises(openai.InternalServerError):
            sdk.chat.completions.create(model="realdify-chat", messages=[{"role": "user", "content": "[http500]"}])
        # the connection the error came back on is still good for the next request
        again = sdk.chat.completions.create(model="realdify-agent", messages=[{"role": "user", "content": "again"}])
        assert again.choices[0].message.content


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_stream_dify_drops_ends_in_band_on_every_transport(dify: DifyDouble, transport: str) -> None:
    with own_client(dify, dify_transport=transport) as sdk:
        stream = sdk.chat.completions.create(
            model="realdify-chat", messages=[{"role": "user", "content": "[drop] cut off"}], stream=True
        )
        with pytest.raises(openai.APIError, match=r"mid-stream|incomplete|cut|ended"):
            for _ in stream:
                pass
