"""The platform's plumbing on the emulators, laid out as Terraform lays it out in the cloud.

Terraform (terraform/main.tf `platform_env`, modules/messaging, modules/function) gives every
function the same `PROMPTOPT_*` variables and creates: the buckets, every platform topic plus those
manifests name (each with a dead-letter topic and a dead-letter hold subscription), the queues, and
for each Pub/Sub- or scheduler-triggered function a push subscription with a retry policy and a
dead-letter policy. `plan` computes the local equivalent and `apply` creates it (REST calls in
parallel, idempotent). Names drop Terraform's environment prefix: a local project holds one environment.

Not emulated: Cloud Scheduler (the stack's `ticker` publishes to the schedule-tick topic instead) and
OIDC on pushes (the Pub/Sub emulator sends no auth header).
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from promptopt.local.emulators import DEFAULT_TASKS_LOCATION, queue_path
from promptopt.local.task_retry import RetryConfig
from promptopt.manifest import FunctionSpec, PubsubTrigger, SchedulerTrigger, StorageTrigger, TaskTrigger

log = logging.getLogger("promptopt.local.wiring")

# var.queues' default (terraform/variables.tf); tests/e2e/test_local_wiring.py keeps the two in step.
# Topics, as in modules/manifest, are exactly those some manifest consumes: a message published to a
# topic nobody reads would be lost.
# var.notification_topics' default: published for people to subscribe to; no function consumes
# them, so they get no push subscription and no dead-letter topic.
NOTIFICATION_TOPICS = ("experiment-alerts",)
PLATFORM_QUEUES = ("inference",)
# Each queue's retry_config: var.queues' default settings (terraform/variables.tf) over
# modules/messaging's optional() defaults, which queues only manifests name get.
# tests/unit/test_task_retry.py keeps both in step with Terraform.
QUEUE_RETRY_DEFAULTS: dict[str, object] = {
    "max_attempts": 10,
    "max_retry_duration": "3600s",
    "min_backoff": "2s",
    "max_backoff": "300s",
    "max_doublings": 5,
}
PLATFORM_QUEUE_RETRY: dict[str, dict[str, object]] = {
    "inference": {
        "max_attempts": 10,
        "max_retry_duration": "3600s",
        "min_backoff": "2s",
        "max_backoff": "300s",
        "max_doublings": 5,
    },
}
# Each queue's rate_limits.max_concurrent_dispatches, likewise (the Tasks emulator honours it).
QUEUE_DISPATCH_DEFAULT = 20
PLATFORM_QUEUE_DISPATCH: dict[str, int] = {"inference": 20}
LOGICAL_BUCKETS = ("datasets", "artifacts")
# modules/function's push subscription and var.max_delivery_attempts.
MAX_DELIVERY_ATTEMPTS = 10
PUSH_MIN_BACKOFF = "10s"
PUSH_MAX_BACKOFF = "600s"
RETENTION = "604800s"
# Emulator addresses only: an http_proxy in the environment must not intercept them.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class WiringError(RuntimeError):
    """The manifest asks for plumbing the local stack cannot provide, or an emulator refused it."""


@dataclass(frozen=True)
class Wiring:
    """Resource names of one local stack, and the environment functions get from them."""

    project: str
    region: str
    topics: dict[str, str]
    queues: dict[str, str]
    buckets: dict[str, str]
    signed_url_endpoint: str | None = None
    signing_key_file: str | None = None
    dead_letter_topics: dict[str, str] = field(default_factory=dict)
    queue_retry: dict[str, RetryConfig] = field(default_factory=dict)  # by full queue name
    queue_dispatch: dict[str, int] = field(default_factory=dict)  # max concurrent, by full name
    # Machine access (Terraform's PROMPTOPT_API_TOKEN_*): the dev issuer's API-token identity,
    # the key the exchange signs with (the cloud signs through IAM instead) and the members registry.
    access_env: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """The `PROMPTOPT_*` variables Terraform's platform_env sets (function URLs come from the host)."""
        env = {
            "GOOGLE_CLOUD_PROJECT": self.project,
            "PROMPTOPT_REGION": self.region,
            "PROMPTOPT_DATASETS_BUCKET": self.buckets["datasets"],
            "PROMPTOPT_ARTIFACTS_BUCKET": self.buckets["artifacts"],
            "PROMPTOPT_TOPICS": json.dumps(self.topics, sort_keys=True),
            "PROMPTOPT_MAX_DELIVERY_ATTEMPTS": str(MAX_DELIVERY_ATTEMPTS),
            "PROMPTOPT_QUEUES": json.dumps(self.queues, sort_keys=True),
        }
        inference = self.queues.get("inference")
        if inference in self.queue_retry:
            # main.tf: the chunk handler writes terminal records on what the queue makes the last attempt.
            env["PROMPTOPT_BATCH_MAX_ATTEMPTS"] = str(self.queue_retry[inference].max_attempts)
        if self.signed_url_endpoint:
            env["PROMPTOPT_SIGNED_URL_ENDPOINT"] = self.signed_url_endpoint
        if self.signing_key_file:
            env["PROMPTOPT_SIGNING_KEY_FILE"] = self.signing_key_file
        env.update(self.access_env)
        return env

    def bucket_for(self, spec: FunctionSpec) -> str:
        """The real bucket a storage-triggered function watches."""
        trigger = spec.trigger
        if not isinstance(trigger, StorageTrigger):
            raise TypeError(f"{spec.name} is not storage-triggered")
        if trigger.bucket not in self.buckets:
            raise WiringError(
                f"{spec.name}: unknown bucket {trigger.bucket!r} (known: {sorted(self.buckets)})"
            )
        return self.buckets[trigger.bucket]


def topic_names(specs: Sequence[FunctionSpec]) -> list[str]:
    """Every logical topic: those the manifests subscribe to (as modules/manifest derives them)."""
    named = [s.trigger.topic for s in specs if isinstance(s.trigger, PubsubTrigger | SchedulerTrigger)]
    return sorted(set(named))


def queue_names(specs: Sequence[FunctionSpec]) -> list[str]:
    """Every logical queue: the platform's plus those task manifests name."""
    named = [s.trigger.queue for s in specs if isinstance(s.trigger, TaskTrigger)]
    return list(dict.fromkeys([*PLATFORM_QUEUES, *named]))


def queue_retry_config(queue: str) -> RetryConfig:
    """The retry_config Terraform gives a logical queue."""
    return RetryConfig.from_terraform({**QUEUE_RETRY_DEFAULTS, **PLATFORM_QUEUE_RETRY.get(queue, {})})


def plan(
    specs: Sequence[FunctionSpec],
    *,
    project: str,
    region: str = DEFAULT_TASKS_LOCATION,
    signed_url_endpoint: str | None = None,
    signing_key_file: str | None = None,
    access_env: dict[str, str] | None = None,
) -> Wiring:
    """The local resource names for these functions (nothing is created)."""
    topics = topic_names(specs)
    queues = {q: queue_path(project, q, region) for q in queue_names(specs)}
    return Wiring(
        project=project,
        region=region,
        topics={t: f"projects/{project}/topics/{t}" for t in [*topics, *NOTIFICATION_TOPICS]},
        dead_letter_topics={t: f"projects/{project}/topics/{t}-dead-letter" for t in topics},
        queues=queues,
        queue_retry={path: queue_retry_config(q) for q, path in queues.items()},
        queue_dispatch={
            path: PLATFORM_QUEUE_DISPATCH.get(q, QUEUE_DISPATCH_DEFAULT) for q, path in queues.items()
        },
        buckets={b: f"{project}-{b}" for b in LOGICAL_BUCKETS},
        signed_url_endpoint=signed_url_endpoint,
        signing_key_file=signing_key_file,
        access_env=dict(access_env or {}),
    )


def storage_targets(
    wiring: Wiring, specs: Sequence[FunctionSpec], urls: Mapping[str, str]
) -> dict[str, list[str]]:
    """Real bucket -> URLs of the functions its finalized events go to (the bridge's targets)."""
    targets: dict[str, list[str]] = {}
    for spec in specs:
        if not isinstance(spec.trigger, StorageTrigger):
            continue
        if spec.trigger.event_type != "google.cloud.storage.object.v1.finalized":
            log.warning("%s: %s events are not delivered locally", spec.name, spec.trigger.event_type)
            continue
        targets.setdefault(wiring.bucket_for(spec), []).append(urls[spec.name] + "/")
    return targets


def push_subscriptions(
    wiring: Wiring, specs: Sequence[FunctionSpec], urls: Mapping[str, str]
) -> dict[str, dict[str, object]]:
    """Subscription name -> body of each function's push subscription (as modules/function)."""
    subscriptions: dict[str, dict[str, object]] = {}
    for spec in specs:
        if not isinstance(spec.trigger, PubsubTrigger | SchedulerTrigger):
            continue
        topic = spec.trigger.topic
        subscriptions[f"{spec.deploy_name}-push"] = {
            "topic": wiring.topics[topic],
            "ackDeadlineSeconds": min(600, max(10, spec.resources.timeout_s)),
            "messageRetentionDuration": RETENTION,
            "pushConfig": {"pushEndpoint": urls[spec.name] + "/"},
            "retryPolicy": {"minimumBackoff": PUSH_MIN_BACKOFF, "maximumBackoff": PUSH_MAX_BACKOFF},
            "deadLetterPolicy": {
                "deadLetterTopic": wiring.dead_letter_topics[topic],
                "maxDeliveryAttempts": MAX_DELIVERY_ATTEMPTS,
            },
        }
    return subscriptions


def apply(
    wiring: Wiring,
    specs: Sequence[FunctionSpec],
    urls: Mapping[str, str],
    *,
    pubsub_host: str | None,
    storage_url: str | None,
    timeout_s: float = 30.0,
) -> None:
    """Create the buckets, topics, dead-letter topics and subscriptions; existing ones are kept.

    Args:
        wiring: the plan.
        specs: the functions (their triggers pick the subscriptions).
        urls: function name -> base URL (push endpoints; the functions need not be up yet).
        pubsub_host: PUBSUB_EMULATOR_HOST (`host:port`), or None to skip Pub/Sub.
        storage_url: STORAGE_EMULATOR_HOST (`http://host:port`), or None to skip the buckets.
        timeout_s: per request.
    """
    create = functools.partial(_create, timeout_s=timeout_s)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        # Buckets and topics first (in parallel), then the subscriptions that name the topics.
        first: list[tuple[str, str, Mapping[str, object]]] = []
        if storage_url:
            buckets_url = f"{storage_url.rstrip('/')}/storage/v1/b?project={wiring.project}"
            first += [("POST", buckets_url, {"name": b}) for b in wiring.buckets.values()]
        if pubsub_host:
            topics = [*wiring.topics.values(), *wiring.dead_letter_topics.values()]
            first += [("PUT", f"http://{pubsub_host}/v1/{t}", {}) for t in topics]
        for future in [pool.submit(create, *call) for call in first]:
            future.result()
        if not pubsub_host:
            return
        prefix = f"http://{pubsub_host}/v1/projects/{wiring.project}/subscriptions"
        subscriptions = {**_dead_letter_holds(wiring), **push_subscriptions(wiring, specs, urls)}
        calls = [pool.submit(create, "PUT", f"{prefix}/{n}", body) for n, body in subscriptions.items()]
        for future in calls:
            future.result()


def _dead_letter_holds(wiring: Wiring) -> dict[str, dict[str, object]]:
    """A pull subscription per dead-letter topic, so dead letters are kept for inspection."""
    return {
        f"{logical}-dead-letter-hold": {
            "topic": topic,
            "ackDeadlineSeconds": 60,
            "messageRetentionDuration": RETENTION,
            "retainAckedMessages": False,
        }
        for logical, topic in wiring.dead_letter_topics.items()
    }


def _create(method: str, url: str, body: Mapping[str, object], *, timeout_s: float) -> None:
    """One create call; 409 (already there) is success, any other refusal a WiringError."""
    data = json.dumps(body).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 - an emulator URL built above
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with _OPENER.open(request, timeout=timeout_s):
            return
    except urllib.error.HTTPError as answer:
        text = answer.read()[:300].decode("utf-8", "replace")
        answer.close()
        if answer.code == 409:
            return
        raise WiringError(f"{method} {url} failed: {answer.code} {text}") from None
