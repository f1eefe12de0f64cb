"""V4 signed PUT URLs: clients upload straight into a bucket, no file bytes pass through a function.

    upload = signed_put_url(bucket=b, object_name=name, content_type="text/csv",
                            max_bytes=100 * 2**20, ttl_s=900)
    httpx.put(upload.url, content=data, headers=upload.headers)

The content type, `x-goog-content-length-range: 0,<max_bytes>` and `x-goog-if-generation-match: 0`
are signed headers, so Cloud Storage itself refuses another type, a larger body, or a second
upload to the same URL (412: the object exists; a URL writes once, never replaces a file that was
already ingested). The client must send exactly `headers`.

Who signs: with `PROMPTOPT_SIGNING_KEY_FILE` (the local stack's dev key) the key signs in-process;
against a bare storage emulator (tests; it ignores signatures) a throwaway key does; otherwise
(Cloud Functions) the function's own service account signs through IAM signBlob, which needs
`roles/iam.serviceAccountTokenCreator` on that account. `PROMPTOPT_SIGNED_URL_ENDPOINT` puts
another host in the URL (the local stack's verifying stand-in for storage.googleapis.com).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from promptopt.clients import storage_client
from promptopt.config import settings

LENGTH_RANGE_HEADER = "x-goog-content-length-range"
# Create-only: GCS refuses the write (412) when the object already exists.
GENERATION_MATCH_HEADER = "x-goog-if-generation-match"
MAX_TTL_S = 7 * 24 * 3600  # the V4 limit
_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)

_lock = threading.Lock()
_credentials: dict[str, Any] = {}


class SigningUnavailable(RuntimeError):
    """No credentials that can sign: neither a key file nor a service-account identity."""


@dataclass(frozen=True)
class SignedUpload:
    """A signed PUT URL, the headers the client must send with it, and when it stops working."""

    url: str
    headers: dict[str, str]
    expires_at: datetime


def signed_put_url(
    *, bucket: str, object_name: str, content_type: str, max_bytes: int, ttl_s: int
) -> SignedUpload:
    """Sign a V4 PUT URL for one object, bound to its content type and a maximum size.

    Args:
        bucket: the real bucket name.
        object_name: the object to create (once: the URL cannot overwrite it).
        content_type: the only Content-Type the upload may carry.
        max_bytes: the largest body accepted (Cloud Storage answers 400 EntityTooLarge beyond it).
        ttl_s: seconds the URL stays valid (1 to 7 days' worth).

    Raises:
        ValueError: a bound is out of range.
        SigningUnavailable: nothing here can sign.
    """
    if not 1 <= ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl_s must be between 1 and {MAX_TTL_S}, got {ttl_s}")
    if max_bytes < 0:
        raise ValueError(f"max_bytes must not be negative, got {max_bytes}")
    if not content_type.strip():
        raise ValueError("content_type is required")
    length_range = f"0,{max_bytes}"
    # The URL's X-Goog-Date is taken (to the second) a moment after this, so this is never late.
    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=ttl_s)
    blob = storage_client().bucket(bucket).blob(object_name)
    url = blob.generate_signed_url(
        version="v4",
        method="PUT",
        expiration=timedelta(seconds=ttl_s),
        content_type=content_type,
        # A fresh dict: the library adds Content-Type and Host to the one it is given.
        headers={LENGTH_RANGE_HEADER: length_range, GENERATION_MATCH_HEADER: "0"},
        api_access_endpoint=settings().signed_url_endpoint or None,
        **_signer(),
    )
    return SignedUpload(
        url=url,
        headers={
            "Content-Type": content_type,
            LENGTH_RANGE_HEADER: length_range,
            GENERATION_MATCH_HEADER: "0",
        },
        expires_at=expires_at,
    )


def _signer() -> dict[str, Any]:
    """Keyword arguments of generate_signed_url that say who signs."""
    key_file = settings().signing_key_file
    if key_file:
        return {"credentials": _key_file_credentials(key_file)}
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        # The bare emulator ignores signatures (only the stack's proxy checks them, and the stack
        # always sets a key file): a throwaway key beats probing for cloud credentials offline.
        return {"credentials": _throwaway_credentials()}
    creds = _identity_credentials()
    return {"service_account_email": creds.service_account_email, "access_token": creds.token}


def _key_file_credentials(path: str) -> Any:
    """Credentials from a service-account key file the deployment configured (a trusted source).

    The key is loaded without cryptography's RSA consistency check, which took about 36 ms of CPU
    on the first upload URL of every instance (google-auth's loader always runs it); as for the
    API-token key (access.signer), the file is the operator's own, not untrusted input.
    """
    with _lock:
        creds = _credentials.get(path)
        if creds is None:
            import json

            from cryptography.hazmat.primitives import serialization
            from google.auth.crypt import RSASigner
            from google.oauth2 import service_account

            try:
                with open(path, encoding="utf-8") as handle:
                    info = json.load(handle)
                key = serialization.load_pem_private_key(
                    str(info["private_key"]).encode(), password=None, unsafe_skip_rsa_key_validation=True
                )
                signer = RSASigner(key, key_id=info.get("private_key_id"))
                creds = service_account.Credentials(
                    signer, str(info["client_email"]), str(info["token_uri"]), scopes=_SCOPES
                )
            except (OSError, KeyError, TypeError, ValueError) as exc:  # JSONDecodeError is a ValueError
                raise SigningUnavailable(
                    f"{path} is not a service-account key file (private_key, client_email, token_uri)"
                ) from exc
            _credentials[path] = creds
        return creds


def _throwaway_credentials() -> Any:
    with _lock:
        creds = _credentials.get("throwaway")
        if creds is None:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import rsa
            from google.oauth2 import service_account

            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode("ascii")
            info = {
                "private_key": pem,
                "client_email": f"emulator-signer@{settings().project_id}.iam.gserviceaccount.com",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
            creds = service_account.Credentials.from_service_account_info(info, scopes=_SCOPES)
            _credentials["throwaway"] = creds
        return creds


def _identity_credentials() -> Any:
    """The runtime service account's credentials, refreshed when their token is (nearly) expired.

    Compute credentials learn their real e-mail only on refresh, and signBlob needs a live token.
    """
    import google.auth
    import google.auth.exceptions
    from google.auth.transport.requests import Request

    with _lock:
        try:
            creds: Any = _credentials.get("")
            if creds is None:
                creds, _ = google.auth.default(scopes=_SCOPES)
                _credentials[""] = creds
            if not creds.valid:
                creds.refresh(Request())
        except google.auth.exceptions.GoogleAuthError as exc:
            raise SigningUnavailable(
                "cannot sign upload URLs: no service-account identity here; set "
                "PROMPTOPT_SIGNING_KEY_FILE to a service-account key file"
            ) from exc
        if not getattr(creds, "service_account_email", None) or creds.service_account_email == "default":
            raise SigningUnavailable(
                "cannot sign upload URLs: the default credentials are not a service account; set "
                "PROMPTOPT_SIGNING_KEY_FILE to a service-account key file"
            )
        return creds


def reset() -> None:
    """Forget cached signing credentials (tests switch key files)."""
    with _lock:
        _credentials.clear()
