"""The local stack as an unlucky user meets it: a function killed, an encoded body, a long-lived token."""

from __future__ import annotations

import gzip
import os
import signal
import time
from collections.abc import Callable

import httpx
import jwt
import pytest

from promptopt.local import dev_issuer
from promptopt.local.stack import Stack

pytestmark = pytest.mark.e2e


def test_a_killed_function_is_restarted_and_answers_again(stack: Stack, gateway: httpx.Client) -> None:
    assert gateway.get("/api/v1/health").status_code == 200
    name = "function health"
    before = stack.process_groups()[name]
    os.kill(before, signal.SIGKILL)  # the main process only, as `kill -9 <pid>` would
    deadline = time.monotonic() + 10
    while stack.process_groups().get(name) in (before, None):
        assert time.monotonic() < deadline, "the function was not restarted"
        time.sleep(0.05)
    # Its orphaned workers are gone with the old group; the new instance answers within seconds.
    deadline = time.monotonic() + 15
    while True:
        answer = gateway.get("/api/v1/health")
        if answer.status_code == 200:
            break
        assert answer.status_code == 502, answer.text  # starting meanwhile: the gateway's problem
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert time.monotonic() < deadline, "the restarted function never answered"
        time.sleep(0.1)
    assert stack.supervisor is not None
    assert stack.supervisor.restarts >= 1
    log = (stack.state_dir / "logs" / "health.log").read_text(encoding="utf-8", errors="replace")
    assert "--- restarting function health ---" in log


def test_an_encoded_body_is_a_415_problem(gateway: httpx.Client, token_for: Callable[..., str]) -> None:
    body = b'{"output_prompt": "Q: {input}"}'
    for encoding, content in (("gzip", body), ("gzip", gzip.compress(body)), ("br", body)):
        answer = gateway.post(
            "/api/v1/prompts",
            content=content,
            headers={
                "Authorization": f"Bearer {token_for('hardening')}",
                "Content-Type": "application/json",
                "Content-Encoding": encoding,
            },
        )
        assert answer.status_code == 415, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["code"] == "unsupported_content_encoding"


def test_a_ten_year_token_is_refused(gateway: httpx.Client, token_for: Callable[..., str]) -> None:
    good = token_for("hardening")
    now = int(time.time())
    long_lived = token_for("hardening", extra_claims={"iat": now, "exp": now + 10 * 365 * 86400})
    assert jwt.decode(good, options={"verify_signature": False})["exp"] - now <= dev_issuer.MAX_TTL_S
    assert gateway.get("/api/v1/prompts", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    answer = gateway.get("/api/v1/prompts", headers={"Authorization": f"Bearer {long_lived}"})
    assert answer.status_code == 401
    assert answer.json()["code"] == "invalid_token"
