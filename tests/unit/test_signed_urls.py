"""Signed upload URLs: what signed_put_url signs is exactly what the local verifier (as GCS) accepts."""

from __future__ import annotations

import base64
import json
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from promptopt import clients, config, signed_urls
from promptopt.local.dev_signer import (
    SignedRequest,
    SignedUrlError,
    V4Verifier,
    signer_email,
    write_dev_signing_key,
)
from promptopt.signed_urls import SignedUpload, SigningUnavailable, signed_put_url

PROJECT = "proj-unit"
ENDPOINT = "http://127.0.0.1:8685"
BUCKET = "proj-unit-datasets"


def _reset() -> None:
    config.reset()
    clients.reset()
    signed_urls.reset()


@pytest.fixture
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "signing-key.json"
    write_dev_signing_key(path, PROJECT)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    monkeypatch.setenv("PROMPTOPT_SIGNING_KEY_FILE", str(path))
    monkeypatch.setenv("PROMPTOPT_SIGNED_URL_ENDPOINT", ENDPOINT)
    # The storage client wants somewhere to point; signing never connects to it.
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    _reset()
    yield path
    _reset()


@pytest.fixture
def verifier(key_file: Path) -> V4Verifier:
    return V4Verifier.from_key_file(key_file)


def sign(name: str = "tenants/t1/drop/data.csv", *, max_bytes: int = 1000, ttl_s: int = 600) -> SignedUpload:
    return signed_put_url(
        bucket=BUCKET, object_name=name, content_type="text/csv", max_bytes=max_bytes, ttl_s=ttl_s
    )


def request_for(url: str, headers: dict[str, str]) -> SignedRequest:
    return SignedRequest.from_url("PUT", url, headers)


def refused(verifier: V4Verifier, request: SignedRequest, **kw: Any) -> SignedUrlError:
    with pytest.raises(SignedUrlError) as info:
        verifier.verify(request, **kw)
    return info.value


def with_query(url: str, **changes: str) -> str:
    parts = urllib.parse.urlsplit(url)
    pairs = [(k, changes.pop(k, v)) for k, v in urllib.parse.parse_qsl(parts.query)]
    pairs += list(changes.items())
    query = urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote, safe="~")
    return urllib.parse.urlunsplit(parts._replace(query=query))


def test_a_signed_url_passes_with_the_headers_it_names(verifier: V4Verifier) -> None:
    upload = sign(max_bytes=1234, ttl_s=600)
    parts = urllib.parse.urlsplit(upload.url)
    assert f"{parts.scheme}://{parts.netloc}" == ENDPOINT
    assert parts.path == f"/{BUCKET}/tenants/t1/drop/data.csv"
    assert upload.headers == {
        "Content-Type": "text/csv",
        "x-goog-content-length-range": "0,1234",
        "x-goog-if-generation-match": "0",  # create-only: the URL writes once
    }
    query = dict(urllib.parse.parse_qsl(parts.query))
    assert (
        query["X-Goog-SignedHeaders"]
        == "content-type;host;x-goog-content-length-range;x-goog-if-generation-match"
    )
    assert query["X-Goog-Expires"] == "600"

    verified = verifier.verify(request_for(upload.url, upload.headers))

    assert verified.signer == signer_email(PROJECT)
    assert verified.length_range == (0, 1234)
    # expires_at is never later than the URL's real expiry, and at most a second earlier.
    assert timedelta(0) <= verified.expires_at - upload.expires_at <= timedelta(seconds=1)


def test_odd_object_names_round_trip(verifier: V4Verifier) -> None:
    upload = sign("tenants/t1/drop/my data+v2 (é).csv")
    assert "%20" in upload.url
    assert "%2B" in upload.url
    verifier.verify(request_for(upload.url, upload.headers))


def test_an_expired_url_is_refused_as_gcs_does(verifier: V4Verifier) -> None:
    upload = sign(ttl_s=60)
    request = request_for(upload.url, upload.headers)
    verifier.verify(request, now=upload.expires_at - timedelta(seconds=1))
    err = refused(verifier, request, now=upload.expires_at + timedelta(seconds=2))
    assert (err.status, err.code) == (400, "ExpiredToken")
    assert ET.fromstring(err.xml()).findtext("Code") == "ExpiredToken"  # noqa: S314 - our own XML


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("/tenants/t1/drop/data.csv", "/tenants/t1/drop/other.csv"),  # another object
        (f"/{BUCKET}/", "/another-bucket/"),  # another bucket
    ],
)
def test_a_url_for_another_object_or_bucket_does_not_match(verifier: V4Verifier, old: str, new: str) -> None:
    upload = sign()
    err = refused(verifier, request_for(upload.url.replace(old, new), upload.headers))
    assert (err.status, err.code) == (403, "SignatureDoesNotMatch")
    canonical = ET.fromstring(err.xml()).findtext("CanonicalRequest")  # noqa: S314 - our own XML
    assert new.strip("/") in (canonical or "")


@pytest.mark.parametrize(
    "changes",
    [
        {"X-Goog-Expires": "604800"},  # a longer life than was signed
        {"X-Goog-Date": "20990101T000000Z"},  # a later start (credential date then disagrees)
        {"generation": "1"},  # an extra parameter
    ],
)
def test_a_tampered_query_is_refused(verifier: V4Verifier, changes: dict[str, str]) -> None:
    upload = sign()
    err = refused(verifier, request_for(with_query(upload.url, **changes), upload.headers))
    assert err.status in (400, 403)
    assert err.code in ("SignatureDoesNotMatch", "MalformedSecurityHeader")


def test_another_content_type_or_a_missing_signed_header_does_not_match(verifier: V4Verifier) -> None:
    upload = sign()
    other_type = {**upload.headers, "Content-Type": "application/json"}
    assert refused(verifier, request_for(upload.url, other_type)).code == "SignatureDoesNotMatch"
    no_range = {"Content-Type": "text/csv"}
    assert refused(verifier, request_for(upload.url, no_range)).code == "SignatureDoesNotMatch"
    wider = {**upload.headers, "x-goog-content-length-range": "0,999999999"}
    assert refused(verifier, request_for(upload.url, wider)).code == "SignatureDoesNotMatch"


def test_a_body_outside_the_signed_range_is_refused(verifier: V4Verifier) -> None:
    upload = sign(max_bytes=100)
    verified = verifier.verify(request_for(upload.url, upload.headers))
    verified.check_length(0)
    verified.check_length(100)
    with pytest.raises(SignedUrlError) as info:
        verified.check_length(101)
    assert (info.value.status, info.value.code) == (400, "EntityTooLarge")


def test_a_key_the_verifier_does_not_trust_is_refused(tmp_path: Path, key_file: Path) -> None:
    stranger = tmp_path / "other" / "key.json"
    write_dev_signing_key(stranger, PROJECT)  # same e-mail, different key
    upload = sign()
    err = refused(V4Verifier.from_key_file(stranger), request_for(upload.url, upload.headers))
    assert err.code == "SignatureDoesNotMatch"


def test_an_unsigned_or_malformed_request_is_refused(verifier: V4Verifier) -> None:
    bare = SignedRequest("PUT", f"/{BUCKET}/x.csv", "", {"host": "127.0.0.1:8685"})
    err = refused(verifier, bare)
    assert (err.status, err.code) == (403, "AccessDenied")
    upload = sign()
    hmac = with_query(upload.url, **{"X-Goog-Algorithm": "GOOG4-HMAC-SHA256"})
    assert refused(verifier, request_for(hmac, upload.headers)).code == "MalformedSecurityHeader"
    bad_date = with_query(upload.url, **{"X-Goog-Date": "yesterday"})
    err = refused(verifier, request_for(bad_date, upload.headers))
    assert (err.status, err.extra["ParameterName"]) == (400, "X-Goog-Date")


def test_bounds_are_checked_before_signing(key_file: Path) -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        sign(ttl_s=8 * 24 * 3600)
    with pytest.raises(ValueError, match="max_bytes"):
        sign(max_bytes=-1)


def test_without_a_key_file_the_runtime_identity_signs_through_iam(
    key_file: Path, verifier: V4Verifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Cloud Functions path: an access token and e-mail go to signBlob, which signs remotely."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
    from google.cloud.storage import _signing

    monkeypatch.delenv("PROMPTOPT_SIGNING_KEY_FILE")
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    _reset()
    monkeypatch.setattr(signed_urls, "storage_client", _anonymous_storage_client)
    private = serialization.load_pem_private_key(
        json.loads(key_file.read_text())["private_key"].encode(), password=None
    )
    calls: list[tuple[str, str]] = []

    class RuntimeIdentity:  # what google.auth.default() gives a function: refreshed on first use
        valid = False
        token: str | None = None
        service_account_email = "default"

        def refresh(self, request: object) -> None:
            self.valid, self.token, self.service_account_email = True, "ya29.token", signer_email(PROJECT)

    def sign_blob(message: str | bytes, access_token: str, service_account_email: str, *_: object) -> str:
        calls.append((access_token, service_account_email))
        data = message.encode() if isinstance(message, str) else message
        return base64.b64encode(private.sign(data, padding.PKCS1v15(), hashes.SHA256())).decode()

    monkeypatch.setattr("google.auth.default", lambda scopes=None: (RuntimeIdentity(), PROJECT))
    monkeypatch.setattr(_signing, "_sign_message", sign_blob)

    upload = sign()

    assert calls == [("ya29.token", signer_email(PROJECT))]
    verifier.verify(request_for(upload.url, upload.headers))


def test_no_signer_at_all_says_what_to_set(key_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import google.auth.exceptions

    monkeypatch.delenv("PROMPTOPT_SIGNING_KEY_FILE")
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    _reset()
    monkeypatch.setattr(signed_urls, "storage_client", _anonymous_storage_client)

    def no_credentials(scopes: object = None) -> object:
        raise google.auth.exceptions.DefaultCredentialsError("none here")

    monkeypatch.setattr("google.auth.default", no_credentials)
    with pytest.raises(SigningUnavailable, match="PROMPTOPT_SIGNING_KEY_FILE"):
        sign()


def _anonymous_storage_client() -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project=PROJECT, credentials=AnonymousCredentials())


def test_the_dev_key_is_kept_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    email = write_dev_signing_key(path, PROJECT)
    first = path.read_bytes()
    assert write_dev_signing_key(path, PROJECT) == email
    assert path.read_bytes() == first
    assert path.stat().st_mode & 0o077 == 0  # a private key: owner only


def test_expires_at_is_utc_now_plus_ttl(key_file: Path) -> None:
    before = datetime.now(UTC)
    upload = sign(ttl_s=900)
    assert before - timedelta(seconds=1) <= upload.expires_at - timedelta(seconds=900) <= datetime.now(UTC)


def test_a_key_file_without_a_key_says_so(key_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = key_file.parent / "not-a-key.json"
    broken.write_text(json.dumps({"client_email": "a@b.iam.gserviceaccount.com"}))
    monkeypatch.setenv("PROMPTOPT_SIGNING_KEY_FILE", str(broken))
    _reset()
    with pytest.raises(SigningUnavailable, match="not a service-account key file"):
        signed_put_url(bucket="b", object_name="o", content_type="text/csv", max_bytes=10, ttl_s=60)
