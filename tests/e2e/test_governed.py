"""End-to-end governance with the official OpenAI SDK.

Starts `heimdall mock-provider` (10 prompt and 20 completion tokens per
answer) and `heimdall serve` with virtual keys required (SQLite in a temporary
directory) on free ports. Through the management API (admin token) it sets a
price, creates a template with a small daily budget, a user and the user's
copy; the user then streams a completion with the `openai` SDK, and spends the
budget until the SDK raises the 402 whose message is governance.md's.
Run through tests/e2e/run.sh (it installs the SDKs and builds the binary).
"""

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

import openai
import pytest

BIN = os.environ.get("HEIMDALL_BIN", "target/debug/heimdall")
ADMIN_TOKEN = "e2e-governed-admin-token-0123456789"
MODEL = "openai/gpt-4o-mini"


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


def call(base, method, path, body=None, token=ADMIN_TOKEN):
    """One HTTP request; returns (status, JSON body)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{base}{path}", data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def admin(base, method, path, body=None, expect=200):
    status, out = call(base, method, path, body)
    assert status == expect, f"{method} {path}: {status} {out}"
    return out


@pytest.fixture(scope="module")
def gateway():
    tmp = tempfile.TemporaryDirectory()
    mock_port, port = free_port(), free_port()
    mock = subprocess.Popen([BIN, "mock-provider", "--listen", f"127.0.0.1:{mock_port}",
                             "--prompt-tokens", "10", "--tokens", "20"])
    config = os.path.join(tmp.name, "heimdall.yaml")
    upstream = f"http://127.0.0.1:{mock_port}"
    with open(config, "w") as f:
        json.dump({"providers": {
            "openai": {"network_config": {"base_url": upstream},
                       "keys": [{"name": "main", "value": "sk-upstream-openai-0001"}]},
        }}, f)  # JSON is YAML
    env = dict(os.environ,
               HEIMDALL_LISTEN=f"127.0.0.1:{port}",
               HEIMDALL_STORE_URL=f"sqlite://{tmp.name}/heimdall.db",
               HEIMDALL_ADMIN_TOKEN=ADMIN_TOKEN)
    env.pop("HEIMDALL_REQUIRE_VIRTUAL_KEY", None)  # the default: keys required
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


@pytest.fixture(scope="module")
def member(gateway):
    """A user holding a copy of "Engineering": $0.10 a day, calendar-aligned in UTC."""
    # $0.001 per input token and $0.002 per output token: one answer costs $0.05.
    admin(gateway, "PUT", "/api/pricing/openai/gpt-4o-mini",
          {"input_cost_per_million_tokens": 1000, "output_cost_per_million_tokens": 2000})
    profile = admin(gateway, "POST", "/api/governance/access-profiles", {
        "name": "Engineering",
        "calendar_aligned": True,
        "timezone": "UTC",
        "provider_configs": [{"provider_name": "openai", "all_models_allowed": True}],
        "budgets": [{"max_limit": 0.1, "reset_duration": "1d"}],
    }, expect=201)["access_profile"]
    admin(gateway, "PUT", f"/api/governance/access-profiles/{profile['id']}/activate", {})
    user = admin(gateway, "POST", "/api/governance/users",
                 {"name": "Grace", "email": "grace@example.com"})["user"]
    copy = admin(gateway, "POST", f"/api/governance/users/{user['id']}/access-profiles",
                 {"access_profile_id": profile["id"]}, expect=201)
    key = copy["virtual_key"]["value"]
    assert key.startswith("sk-bf-")
    return {"user": user["id"], "profile": profile["id"], "key": key}


def budget(gateway, member):
    """The copy's budget as the management API shows it (live usage)."""
    copies = admin(gateway, "GET", f"/api/governance/users/{member['user']}/access-profiles")
    copy = [c for c in copies["access_profiles"] if c["parent_profile_id"] == member["profile"]][0]
    return copy["budgets"][0]


def test_a_keyless_sdk_call_is_refused(gateway, member):
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key="sk-not-a-virtual-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 401
    assert err.value.body["type"] == "virtual_key_required"


def test_a_governed_user_streams_then_exhausts_the_budget(gateway, member):
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=member["key"], max_retries=0)

    # Streaming: answered, and charged by the time the stream ends.
    stream = client.chat.completions.create(
        model=MODEL, max_tokens=20, stream=True,
        messages=[{"role": "user", "content": "hello"}])
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.startswith("Mock answer")
    b = budget(gateway, member)
    assert abs(b["current_usage"] - 0.05) < 1e-9, b

    # The quota route shows the same to the key holder.
    status, quota = call(gateway, "GET", "/api/governance/virtual-keys/quota", token=member["key"])
    assert status == 200, quota
    q = quota["access_profiles"][0]["budgets"][0]
    assert abs(q["current_usage"] - 0.05) < 1e-9, q

    # Headers of a governed answer.
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, max_tokens=20, messages=[{"role": "user", "content": "hello"}])
    assert raw.status_code == 200
    assert float(raw.headers["x-heimdall-budget-remaining"]) < 0.05
    assert abs(budget(gateway, member)["current_usage"] - 0.1) < 1e-9

    # Spent: the SDK surfaces the 402 with the spec's message.
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(
            model=MODEL, max_tokens=20, messages=[{"role": "user", "content": "one more"}])
    e = err.value
    assert e.status_code == 402
    assert e.type == "budget_exceeded" and e.code == "budget_exceeded"
    resets = datetime.fromisoformat(budget(gateway, member)["next_reset_at"].replace("Z", "+00:00"))
    assert resets.astimezone(timezone.utc).time().isoformat() == "00:00:00"
    expected = ('budget exceeded: profile "Engineering" total 1d budget 0.1000 of 0.1000 USD used, '
                f'resets {resets.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}')
    assert e.body["message"] == expected
    assert expected in e.message
    assert abs(budget(gateway, member)["current_usage"] - 0.1) < 1e-9

    # Streaming is refused the same way, before any event.
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(
            model=MODEL, max_tokens=20, stream=True, messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 402
    assert err.value.body["message"] == expected
