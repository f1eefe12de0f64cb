"""The local signing identity for upload URLs, and V4 signature verification as Cloud Storage does it.

The stack writes a service-account-shaped JSON key (`write_dev_signing_key`); functions sign with it
(`PROMPTOPT_SIGNING_KEY_FILE`), and the signed-URL proxy checks each request with `V4Verifier`, which
rebuilds the canonical request and string-to-sign exactly as GCS does and answers with GCS's XML
error codes (ExpiredToken, SignatureDoesNotMatch, EntityTooLarge, ...), so a client that works here
meets the same refusals in the cloud.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import os
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ALGORITHM = "GOOG4-RSA-SHA256"
MAX_EXPIRES_S = 7 * 24 * 3600
LENGTH_RANGE_HEADER = "x-goog-content-length-range"
_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_RANGE_RE = re.compile(r"^\s*(\d+)\s*,\s*(\d+)\s*$")
# GCS's own wording, so clients that parse the XML see what they will see in the cloud.
_MISMATCH_DETAILS = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your Google secret key and signing method."
)


def signer_email(project: str) -> str:
    """The dev signer's service-account address in `project`."""
    return f"promptopt-local-signer@{project}.iam.gserviceaccount.com"


def write_dev_signing_key(path: Path, project: str) -> str:
    """Create a service-account JSON key at `path` unless one exists; return its client_email.

    An existing key is kept, so URLs signed before a restart of the stack stay valid.
    """
    if path.is_file():
        return str(json.loads(path.read_text(encoding="utf-8"))["client_email"])
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    email = signer_email(project)
    document = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": hashlib.sha256(pem.encode()).hexdigest()[:40],
        "private_key": pem,
        "client_email": email,
        "client_id": str(int(hashlib.sha256(email.encode()).hexdigest()[:15], 16)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # a private key: owner only
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(document, out, indent=2)
    os.replace(tmp, path)
    return email


class SignedUrlError(Exception):
    """A request Cloud Storage would refuse, with its status and XML error body."""

    def __init__(self, status: int, code: str, message: str, details: str = "", **extra: str) -> None:
        super().__init__(f"{status} {code}: {details or message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.extra = extra

    def xml(self) -> str:
        """The error document, shaped as GCS's XML API writes it."""
        parts = [f"<Code>{escape(self.code)}</Code>", f"<Message>{escape(self.message)}</Message>"]
        if self.details:
            parts.append(f"<Details>{escape(self.details)}</Details>")
        parts += [f"<{k}>{escape(v)}</{k}>" for k, v in self.extra.items()]
        return "<?xml version='1.0' encoding='UTF-8'?><Error>" + "".join(parts) + "</Error>"


def _malformed(parameter: str, details: str) -> SignedUrlError:
    return SignedUrlError(
        400,
        "MalformedSecurityHeader",
        "Your request has a malformed header.",
        details,
        ParameterName=parameter,
    )


def entity_too_large() -> SignedUrlError:
    """The refusal for a body above the signed x-goog-content-length-range."""
    return SignedUrlError(
        400,
        "EntityTooLarge",
        "Your proposed upload is larger than the maximum object size specified in your Policy Document.",
        "Content-length exceeds upper bound on range",
    )


def entity_too_small() -> SignedUrlError:
    """The refusal for a body below the signed x-goog-content-length-range."""
    return SignedUrlError(
        400,
        "EntityTooSmall",
        "Your proposed upload is smaller than the minimum object size specified in your Policy Document.",
        "Content-length is smaller than lower bound on range",
    )


@dataclass(frozen=True)
class SignedRequest:
    """What verification needs from an HTTP request, exactly as it arrived.

    `raw_path` is the percent-encoded path without the query; `raw_query` the query string as sent;
    `headers` the request headers (any case; repeated headers joined with commas).
    """

    method: str
    raw_path: str
    raw_query: str
    headers: Mapping[str, str]

    @classmethod
    def from_url(cls, method: str, url: str, headers: Mapping[str, str]) -> SignedRequest:
        """The request a client would send to `url` with `headers` (Host taken from the URL)."""
        parts = urllib.parse.urlsplit(url)
        sent = {"host": parts.netloc, **{k.lower(): v for k, v in headers.items()}}
        return cls(method, parts.path, parts.query, sent)


@dataclass(frozen=True)
class VerifiedRequest:
    """A request whose signature and validity window passed; the limits it carries."""

    signer: str
    expires_at: datetime
    length_range: tuple[int, int] | None = None
    signed_headers: tuple[str, ...] = field(default_factory=tuple)

    def check_length(self, length: int) -> None:
        """Raise EntityTooLarge / EntityTooSmall when `length` is outside the signed range."""
        if self.length_range is None:
            return
        low, high = self.length_range
        if length > high:
            raise entity_too_large()
        if length < low:
            raise entity_too_small()


def _query_pairs(raw_query: str) -> list[tuple[str, str]]:
    """Decoded name/value pairs in order; unlike parse_qsl, '+' stays a plus (as GCS reads it)."""
    pairs = []
    for item in raw_query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        pairs.append((urllib.parse.unquote(name), urllib.parse.unquote(value)))
    return pairs


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="~")


def canonical_request(
    method: str,
    raw_path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: Sequence[str],
) -> str:
    """The V4 canonical request (query without X-Goog-Signature; `headers` keyed in lower case)."""
    canonical_query = "&".join(
        sorted(f"{_quote(k)}={_quote(v)}" for k, v in query if k.lower() != "x-goog-signature")
    )
    canonical_headers = "".join(f"{h}:{' '.join(headers.get(h, '').split())}\n" for h in signed_headers)
    payload = headers.get("x-goog-content-sha256", "UNSIGNED-PAYLOAD")
    return "\n".join(
        [method, raw_path, canonical_query, canonical_headers, ";".join(signed_headers), payload]
    )


def string_to_sign(timestamp: str, scope: str, canonical: str) -> str:
    """The V4 string-to-sign over a canonical request."""
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return "\n".join([ALGORITHM, timestamp, scope, digest])


class V4Verifier:
    """Checks V4 signed-URL requests against the public keys of known signers."""

    def __init__(self, keys: Mapping[str, rsa.RSAPublicKey], *, clock_skew_s: int = 900) -> None:
        """Trust `keys` (client_email -> public key); allow `clock_skew_s` of X-Goog-Date in the future."""
        self.keys = dict(keys)
        self.clock_skew_s = clock_skew_s

    @classmethod
    def from_key_file(cls, path: Path) -> V4Verifier:
        """Trust the signer of one service-account JSON key file."""
        document = json.loads(path.read_text(encoding="utf-8"))
        private = serialization.load_pem_private_key(document["private_key"].encode("ascii"), password=None)
        if not isinstance(private, rsa.RSAPrivateKey):
            raise ValueError(f"{path} does not hold an RSA key")
        return cls({document["client_email"]: private.public_key()})

    def verify(self, request: SignedRequest, *, now: datetime | None = None) -> VerifiedRequest:
        """Verify algorithm, credential, validity window and signature; SignedUrlError otherwise."""
        pairs = _query_pairs(request.raw_query)
        params: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            if key.startswith("x-goog-") and key in params:
                raise _malformed(name, f"The parameter {name} appears more than once.")
            params[key] = value
        if "x-goog-signature" not in params and "x-goog-algorithm" not in params:
            raise SignedUrlError(
                403,
                "AccessDenied",
                "Access denied.",
                "Anonymous caller does not have storage.objects.create access to the Google Cloud "
                "Storage object.",
            )
        for required in ("algorithm", "credential", "date", "expires", "signedheaders", "signature"):
            if not params.get(f"x-goog-{required}"):
                raise _malformed(f"X-Goog-{required.title()}", f"The parameter X-Goog-{required} is missing.")
        if params["x-goog-algorithm"] != ALGORITHM:
            raise _malformed("X-Goog-Algorithm", f"Unsupported algorithm {params['x-goog-algorithm']!r}.")
        timestamp = params["x-goog-date"]
        try:
            signed_at = datetime.strptime(timestamp, _DATE_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            raise _malformed("X-Goog-Date", "X-Goog-Date must be in the ISO8601 basic format.") from None
        try:
            expires_s = int(params["x-goog-expires"])
        except ValueError:
            raise _malformed("X-Goog-Expires", "X-Goog-Expires must be an integer.") from None
        if not 1 <= expires_s <= MAX_EXPIRES_S:
            raise _malformed("X-Goog-Expires", f"X-Goog-Expires must be between 1 and {MAX_EXPIRES_S}.")
        email, scope = self._credential(params["x-goog-credential"], timestamp)

        now = now or datetime.now(UTC)
        expires_at = signed_at + timedelta(seconds=expires_s)
        if now >= expires_at:
            raise SignedUrlError(
                400,
                "ExpiredToken",
                "Invalid argument.",
                f"The provided token has expired. Request signature expired at: {expires_at.isoformat()}",
            )
        if signed_at - now > timedelta(seconds=self.clock_skew_s):
            raise SignedUrlError(
                400, "RequestNotYetValid", "Invalid argument.", "The request is not yet valid (X-Goog-Date)."
            )

        headers = {k.lower(): v for k, v in request.headers.items()}
        signed_headers = tuple(params["x-goog-signedheaders"].split(";"))
        if "host" not in signed_headers or list(signed_headers) != sorted(set(signed_headers)):
            raise _malformed(
                "X-Goog-SignedHeaders", "Signed headers must be sorted, unique and include host."
            )
        canonical = canonical_request(request.method, request.raw_path, pairs, headers, signed_headers)
        to_sign = string_to_sign(timestamp, scope, canonical)
        if not self._signature_ok(email, params["x-goog-signature"], to_sign):
            raise SignedUrlError(
                403,
                "SignatureDoesNotMatch",
                "Access denied.",
                _MISMATCH_DETAILS,
                StringToSign=to_sign,
                CanonicalRequest=canonical,
            )
        return VerifiedRequest(
            signer=email,
            expires_at=expires_at,
            length_range=_length_range(headers.get(LENGTH_RANGE_HEADER)),
            signed_headers=signed_headers,
        )

    @staticmethod
    def _credential(credential: str, timestamp: str) -> tuple[str, str]:
        """Split `email/date/location/storage/goog4_request` into the e-mail and the scope."""
        parts = credential.split("/")
        if len(parts) != 5 or parts[3:] != ["storage", "goog4_request"] or not parts[0]:
            raise _malformed(
                "X-Goog-Credential", "X-Goog-Credential is not email/date/location/storage/goog4_request."
            )
        if parts[1] != timestamp[:8]:
            raise _malformed("X-Goog-Credential", "The credential date does not match X-Goog-Date.")
        return parts[0], "/".join(parts[1:])

    def _signature_ok(self, email: str, signature_hex: str, to_sign: str) -> bool:
        key = self.keys.get(email)
        if key is None:
            return False  # an unknown signer's signature cannot match any key we trust
        try:
            signature = binascii.unhexlify(signature_hex)
        except (binascii.Error, ValueError):
            return False
        try:
            key.verify(signature, to_sign.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True


def _length_range(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    match = _RANGE_RE.match(value)
    if not match or int(match[1]) > int(match[2]):
        raise SignedUrlError(
            400, "InvalidArgument", "Invalid argument.", f"Invalid {LENGTH_RANGE_HEADER} header: {value!r}"
        )
    return int(match[1]), int(match[2])
