"""Publishing over Pub/Sub's REST API: against the emulator, and against a server that fails.

The emulator proves the calls themselves (what is published is what a subscriber pulls); a small
local server that answers what we tell it (tests.scripted_server) proves the retry policy, which
the emulator cannot be made to exercise.
"""

from __future__ import annotations

import base64
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from promptopt import clients, pubsub_rest
from tests.conftest import PROJECT
from tests.scripted_server import scripted_fixture

pytestmark = pytest.mark.integration


@pytest.fixture
def topic(emulator_env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """A fresh topic with a pull subscription: (topic path, subscription path)."""
    clients.reset()
    host = f"http://{os.environ['PUBSUB_EMULATOR_HOST']}/v1"
    name = f"rest-{uuid.uuid4().hex[:8]}"
    topic, subscription = f"projects/{PROJECT}/topics/{name}", f"projects/{PROJECT}/subscriptions/{name}"
    httpx.put(f"{host}/{topic}").raise_for_status()
    httpx.put(f"{host}/{subscription}", json={"topic": topic}).raise_for_status()
    yield topic, subscription
    httpx.delete(f"{host}/{subscription}")
    httpx.delete(f"{host}/{topic}")


def test_what_is_published_is_what_a_subscriber_pulls(topic: tuple[str, str]) -> None:
    path, subscription = topic
    message_id = pubsub_rest.publish(path, b'{"run_id":"r1"}', {"tenant": "t1"}, timeout_s=5)
    pulled = httpx.post(
        f"http://{os.environ['PUBSUB_EMULATOR_HOST']}/v1/{subscription}:pull", json={"maxMessages": 10}
    ).json()["receivedMessages"]
    assert len(pulled) == 1
    message = pulled[0]["message"]
    assert message["messageId"] == message_id
    assert base64.b64decode(message["data"]) == b'{"run_id":"r1"}'
    assert message["attributes"] == {"tenant": "t1"}
    assert pubsub_rest.get_topic(path, timeout_s=5)["name"] == path


def test_a_missing_topic_fails_at_once_with_its_status(emulator_env: dict[str, str]) -> None:
    clients.reset()
    started = time.monotonic()
    with pytest.raises(pubsub_rest.PubSubError) as raised:
        pubsub_rest.publish(f"projects/{PROJECT}/topics/no-such-topic", b"x", {}, timeout_s=5)
    assert raised.value.status == 404
    assert time.monotonic() - started < 2  # not retried: a 404 will not heal
    with pytest.raises(pubsub_rest.PubSubError) as raised:
        pubsub_rest.get_topic(f"projects/{PROJECT}/topics/no-such-topic", timeout_s=5)
    assert raised.value.status == 404


scripted = scripted_fixture("PUBSUB_EMULATOR_HOST", lambda server: server.host)


UNAVAILABLE = (503, {"error": {"code": 503, "status": "UNAVAILABLE"}})


def test_transient_failures_are_retried_until_the_message_is_taken(scripted: Any) -> None:
    server = scripted([UNAVAILABLE, (429, {}), (200, {"messageIds": ["42"]})])
    assert pubsub_rest.publish("projects/p/topics/t-1", b"x", {}, timeout_s=10) == "42"
    assert len(server.seen) == 3
    assert server.seen[0].json() == server.seen[2].json() == {"messages": [{"data": "eA=="}]}


def test_a_service_that_stays_down_fails_by_the_deadline(scripted: Any) -> None:
    server = scripted([UNAVAILABLE])
    started = time.monotonic()
    with pytest.raises(pubsub_rest.PubSubError) as raised:
        pubsub_rest.publish("projects/p/topics/t-1", b"x", {}, timeout_s=1.0)
    assert raised.value.status == 503
    assert time.monotonic() - started < 4  # the 1 s deadline, not the client's own
    assert len(server.seen) >= 2


def test_a_refused_message_is_not_retried(scripted: Any) -> None:
    server = scripted([(400, {"error": {"code": 400, "message": "bad"}})])
    with pytest.raises(pubsub_rest.PubSubError, match="400"):
        pubsub_rest.publish("projects/p/topics/t-1", b"x", {}, timeout_s=5)
    assert len(server.seen) == 1


def test_an_answer_without_one_id_is_an_error(scripted: Any) -> None:
    scripted([(200, {"messageIds": []})])
    with pytest.raises(pubsub_rest.PubSubError, match="one message id"):
        pubsub_rest.publish("projects/p/topics/t-1", b"x", {}, timeout_s=5)


def test_the_emulator_is_reached_directly_whatever_proxy_the_environment_names(
    scripted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    server = scripted([(200, {"messageIds": ["1"]})])
    assert pubsub_rest.publish("projects/p/topics/t-1", b"x", {}, timeout_s=5) == "1"
    assert len(server.seen) == 1
