"""End-to-end: the official OpenAI and Anthropic SDKs against Heimdall.

Starts `heimdall mock-provider` and `heimdall serve` (SQLite in a temporary
directory, HEIMDALL_REQUIRE_VIRTUAL_KEY=false) on free ports, and talks to
Heimdall with both SDKs, streaming and not, in both directions of translation.
Run through tests/e2e/run.sh (it installs the SDKs and builds the binary).
"""

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request

import anthropic
import openai
import pytest

BIN = os.environ.get("HEIMDALL_BIN", "target/debug/heimdall")
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(url, proc, deadline_s=30):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except Exception:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer in {deadline_s}s")


@pytest.fixture(scope="session")
def heimdall():
    tmp = tempfile.TemporaryDirectory()
    mock_port, port = free_port(), free_port()
    mock = subprocess.Popen([BIN, "mock-provider", "--listen", f"127.0.0.1:{mock_port}"])
    config = os.path.join(tmp.name, "heimdall.yaml")
    upstream = f"http://127.0.0.1:{mock_port}"
    with open(config, "w") as f:
        json.dump({"providers": {
            "openai": {"network_config": {"base_url": upstream}, "keys": [{"name": "main", "value": "sk-upstream-openai-0001"}]},
            "anthropic": {"network_config": {"base_url": upstream}, "keys": [{"name": "main", "value": "sk-upstream-anthropic-01"}]},
        }}, f)  # JSON is YAML
    env = dict(os.environ,
               HEIMDALL_LISTEN=f"127.0.0.1:{port}",
               HEIMDALL_STORE_URL=f"sqlite://{tmp.name}/heimdall.db",
               HEIMDALL_REQUIRE_VIRTUAL_KEY="false",
               HEIMDALL_ADMIN_TOKEN="e2e-admin-token-0123456789")
    server = subprocess.Popen([BIN, "serve", "--config", config], env=env)
    try:
        wait_until(f"{upstream}/v1/models", mock)
        wait_until(f"http://127.0.0.1:{port}/health", server)
        yield f"http://127.0.0.1:{port}"
    finally:
        for p in (server, mock):
            p.terminate()
            p.wait(timeout=10)
        tmp.cleanup()


@pytest.fixture
def oai(heimdall):
    return openai.OpenAI(base_url=f"{heimdall}/v1", api_key="sk-client-not-a-virtual-key")


@pytest.fixture
def claude(heimdall):
    return anthropic.Anthropic(base_url=f"{heimdall}/anthropic", api_key="sk-ant-client")


def test_openai_sdk_chat(oai):
    r = oai.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content.startswith("Mock answer")
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.completion_tokens == 16


def test_openai_sdk_stream_with_usage(oai):
    stream = oai.chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
        stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Mock answer")
    assert chunks[-1].usage.completion_tokens == 16


def test_openai_sdk_against_anthropic_provider_with_tools(oai):
    r = oai.chat.completions.create(
        model="anthropic/claude-3-5-haiku-latest", max_tokens=64,
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "weather in Paris?"}],
        tools=[WEATHER_TOOL])
    call = r.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert r.choices[0].finish_reason == "tool_calls"
    stream = oai.chat.completions.create(
        model="anthropic/claude-3-5-haiku-latest", messages=[{"role": "user", "content": "hi"}], stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.startswith("Mock answer")


def test_openai_sdk_embeddings_and_models(oai):
    e = oai.embeddings.create(model="openai/text-embedding-3-small", input=["a", "b"])
    assert len(e.data) == 2 and len(e.data[0].embedding) > 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ids = [m.id for m in oai.models.list()]
        if "openai/gpt-4o-mini" in ids:
            break
        time.sleep(0.05)
    assert "openai/gpt-4o-mini" in ids


def test_openai_sdk_sees_upstream_errors(oai):
    with pytest.raises(openai.RateLimitError) as err:
        oai.with_options(max_retries=0).chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-mock-status": "429"})
    assert "429" in str(err.value)
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model="nope/x", messages=[{"role": "user", "content": "hi"}])


def test_anthropic_sdk_messages(claude):
    r = claude.messages.create(model="claude-3-5-haiku-latest", max_tokens=64,
                               messages=[{"role": "user", "content": "hi"}])
    assert r.content[0].text.startswith("Mock answer")
    assert r.stop_reason == "end_turn"
    assert r.usage.output_tokens == 16


def test_anthropic_sdk_stream(claude):
    with claude.messages.stream(model="claude-3-5-haiku-latest", max_tokens=64,
                                messages=[{"role": "user", "content": "hi"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text.startswith("Mock answer")
    assert final.usage.output_tokens == 16


def test_anthropic_sdk_against_openai_provider(claude):
    r = claude.messages.create(
        model="openai/gpt-4o-mini", max_tokens=64, system="be brief",
        messages=[{"role": "user", "content": "weather?"}],
        tools=[{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}])
    assert r.stop_reason == "tool_use"
    tool = [b for b in r.content if b.type == "tool_use"][0]
    assert tool.input == {"city": "Paris"}
    with claude.messages.stream(model="openai/gpt-4o-mini", max_tokens=64,
                                messages=[{"role": "user", "content": "hi"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text.startswith("Mock answer")
    assert final.stop_reason == "end_turn"


def test_anthropic_sdk_sees_errors_in_its_shape(claude):
    with pytest.raises(anthropic.RateLimitError) as err:
        claude.with_options(max_retries=0).messages.create(
            model="claude-3-5-haiku-latest", max_tokens=5, messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-mock-status": "429"})
    assert err.value.body["type"] == "error" and err.value.body["error"]["type"] == "provider_error"
    with pytest.raises(anthropic.BadRequestError) as err:
        claude.messages.create(model="claude-3-5-haiku-latest", max_tokens=5, messages="not a list")
    assert "expected" in str(err.value)
