"""One Google REST API call with the retry policy of the client libraries, inside a deadline.

Pub/Sub publishing (pubsub_rest) and inline dataset uploads (storage_rest) call their services'
REST APIs directly instead of through the client libraries, for cold start (each module says what
it saves). Both need what those libraries' default retry does for them: transient answers (429,
5xx) and requests that got no answer are tried again with jittered backoff until the deadline,
everything else fails at once.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from promptopt.backoff import TRANSIENT_STATUSES, Backoff

if TYPE_CHECKING:
    import requests

BACKOFF = Backoff(initial_s=0.1, max_s=2.0, jitter=True)


class RestError(RuntimeError):
    """The service answered with an error, or could not be reached before the deadline."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout_s: float,
    accept: frozenset[int] = frozenset(),
    error: type[RestError] = RestError,
    **request: Any,
) -> requests.Response:
    """Send one request, retried on transient failures until `timeout_s` has passed.

    Answers the response when it succeeded or its status is in `accept`; raises `error` otherwise
    (with the status, or None when the service was never reached).
    """
    import requests

    what = f"{method} {url.split('?', 1)[0]}"
    deadline = time.monotonic() + timeout_s
    retry = 0
    while True:
        left = deadline - time.monotonic()
        try:
            response = session.request(method, url, timeout=max(left, 0.05), **request)
        except requests.RequestException as exc:  # no answer (a dropped connection, a timeout, …)
            failure, status, retry_after = f"{type(exc).__name__}: {exc}", None, None
        else:
            if response.ok or response.status_code in accept:
                return response
            failure, status = f"{response.status_code} {response.text[:300]}", response.status_code
            retry_after = response.headers.get("Retry-After")
            if status not in TRANSIENT_STATUSES:
                raise error(f"{what}: {failure}", status)
        pause = BACKOFF.delay(retry, retry_after)
        if time.monotonic() + pause >= deadline:
            raise error(f"{what}: {failure} (gave up after {retry + 1} attempts)", status)
        time.sleep(pause)
        retry += 1
