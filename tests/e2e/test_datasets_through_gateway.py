"""Datasets as a user meets them: the API through the gateway, signed uploads, bucket drops, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from promptopt.local.stack import Stack
from tests.support import new_tenant

pytestmark = pytest.mark.e2e

CLI = str(Path(sys.executable).with_name("promptopt"))
CSV = "question,answer\n" + "".join(f"how much is {i} and {i}?,{2 * i}\n" for i in range(300))


@pytest.fixture
def tenant() -> str:
    return new_tenant()


@pytest.fixture
def api(stack: Stack, token_for: Callable[..., str], tenant: str) -> Iterator[httpx.Client]:
    """A client of its own: the session's `gateway` client must stay anonymous for other tests."""
    headers = {"Authorization": f"Bearer {token_for(tenant, 'admin')}"}
    with httpx.Client(base_url=stack.gateway_url, headers=headers, timeout=30) as client:
        yield client


def wait_version(api: httpx.Client, dataset_id: str, number: int, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        response = api.get(f"/api/v1/datasets/{dataset_id}")
        if response.status_code == 200:
            versions = {v["version"]: v for v in response.json()["versions"]}
            version = versions.get(number)
            if version and version["status"] in ("ready", "failed"):
                return version
        assert time.monotonic() < deadline, f"version {number} not final after {timeout_s}s: {response.text}"
        time.sleep(0.2)


def test_signed_url_upload_ends_in_a_ready_split_version(api: httpx.Client) -> None:
    body = {"name": "sums", "format": "csv", "mapping": {"inputs": ["question"], "reference": "answer"}}
    created = api.post("/api/v1/datasets", json=body)
    assert created.status_code == 201, created.text
    upload = created.json()["upload"]
    dataset_id = created.json()["dataset"]["dataset_id"]
    assert upload["headers"]["x-goog-content-length-range"].startswith("0,")

    put = httpx.put(upload["url"], content=CSV.encode(), headers=upload["headers"])
    assert put.status_code == 200, put.text
    version = wait_version(api, dataset_id, 1)
    assert version["status"] == "ready", version
    assert version["rows_ok"] == 300
    assert set(version["stats"]["rows_per_split"]) == {"train", "validation", "test"}

    page = api.get(f"/api/v1/datasets/{dataset_id}/rows", params={"page_size": 100, "split": "validation"})
    assert page.status_code == 200
    assert {row["split"] for row in page.json()["items"]} == {"validation"}
    first = api.get(f"/api/v1/datasets/{dataset_id}/sample", params={"n": 5, "seed": 7}).json()["rows"]
    again = api.get(f"/api/v1/datasets/{dataset_id}/sample", params={"n": 5, "seed": 7}).json()["rows"]
    assert first == again
    assert len(first) == 5

    # The URL was for version 1's object: the same URL cannot write anywhere else.
    other = upload["url"].replace("/v1/source.csv", "/v2/source.csv")
    refused = httpx.put(other, content=CSV.encode(), headers=upload["headers"])
    assert refused.status_code == 403
    assert "SignatureDoesNotMatch" in refused.text
    too_big = api.post("/api/v1/datasets", json={**body, "upload_max_bytes": 10}).json()["upload"]
    refused = httpx.put(too_big["url"], content=CSV.encode(), headers=too_big["headers"])
    assert refused.status_code == 400
    assert "EntityTooLarge" in refused.text


def test_an_expired_signed_url_is_refused(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    from promptopt import config, signed_urls

    for key in ("PROMPTOPT_SIGNING_KEY_FILE", "PROMPTOPT_SIGNED_URL_ENDPOINT", "PROMPTOPT_DATASETS_BUCKET"):
        monkeypatch.setenv(key, stack.platform_env[key])
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", stack.env["STORAGE_EMULATOR_HOST"])
    config.reset()
    signed_urls.reset()
    try:
        signed = signed_urls.signed_put_url(
            bucket=stack.platform_env["PROMPTOPT_DATASETS_BUCKET"],
            object_name="tenants/t-expired/datasets/ds_00000000000000000000/v1/source.csv",
            content_type="text/csv",
            max_bytes=1000,
            ttl_s=1,
        )
    finally:
        config.reset()
        signed_urls.reset()
    time.sleep(2.1)
    refused = httpx.put(signed.url, content=b"a,b\n1,2\n", headers=signed.headers)
    assert refused.status_code == 400
    assert "ExpiredToken" in refused.text


@pytest.fixture
def bucket(stack: Stack) -> Iterator[Any]:
    saved = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = stack.env["STORAGE_EMULATOR_HOST"]
    from google.cloud import storage

    client = storage.Client(project=stack.config.project)
    yield client.bucket(stack.platform_env["PROMPTOPT_DATASETS_BUCKET"])
    if saved is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = saved


def test_bucket_drop_is_ingested_without_the_api(api: httpx.Client, bucket: Any, tenant: str) -> None:
    bucket.blob(f"tenants/{tenant}/drop/support-faq.jsonl").upload_from_string(
        b'{"input": "reset password", "target": "use the link"}\n{"input": "refund", "target": "30 days"}\n'
    )
    deadline = time.monotonic() + 30
    while not (items := api.get("/api/v1/datasets").json()["items"]):
        assert time.monotonic() < deadline, "the dropped file never became a dataset"
        time.sleep(0.2)
    assert items[0]["name"] == "support-faq"
    version = wait_version(api, items[0]["dataset_id"], 1)
    assert version["status"] == "ready"
    assert version["origin"] == "bucket_drop"
    assert version["rows_ok"] == 2


def cli(stack: Stack, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROMPTOPT_API_URL": stack.gateway_url, "PROMPTOPT_TOKEN": token}
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def test_cli_datasets_walkthrough(
    stack: Stack, token_for: Callable[..., str], tenant: str, tmp_path: Path
) -> None:
    token = token_for(tenant, "admin")
    big = tmp_path / "big.csv"  # above the inline cap: goes through the signed URL with a progress bar
    big.write_text(
        "question,answer\n" + "".join(f"question number {i} {'x' * 60},{i}\n" for i in range(20_000))
    )
    created = cli(
        stack,
        token,
        "--json",
        "datasets",
        "create",
        str(big),
        "--name",
        "big",
        "--input",
        "question",
        "--reference",
        "answer",
        "--wait",
    )
    assert created.returncode == 0, created.stderr
    dataset = json.loads(created.stdout)
    dataset_id = dataset["dataset"]["dataset_id"] if "dataset" in dataset else dataset["dataset_id"]
    assert "100%" in created.stderr

    sample = cli(stack, token, "--json", "datasets", "sample", dataset_id, "-n", "3", "--seed", "1")
    assert sample.returncode == 0, sample.stderr
    assert len(json.loads(sample.stdout)["rows"]) == 3

    bad = tmp_path / "bad.csv"
    bad.write_text("question,answer\na,1\nb,2,3\n")
    failed = cli(
        stack,
        token,
        "datasets",
        "create",
        str(bad),
        "--name",
        "bad",
        "--input",
        "question",
        "--reference",
        "answer",
        "--wait",
    )
    assert failed.returncode == 1
    assert "line 3" in failed.stdout + failed.stderr

    listed = cli(stack, token, "--json", "datasets", "list")
    assert {d["name"] for d in json.loads(listed.stdout)["items"]} == {"big", "bad"}
    deleted = cli(stack, token, "datasets", "delete", dataset_id, "--yes")
    assert deleted.returncode == 0, deleted.stderr
