import base64
import json

import pytest

from promptopt.auth import (
    Role,
    decode_userinfo,
    encode_userinfo,
    principal_from_claims,
    principal_from_header,
)
from promptopt.errors import Forbidden, Unauthenticated


def test_userinfo_round_trip_with_and_without_padding() -> None:
    claims = {"sub": "u", "tenant": "acme", "role": "editor", "x": "é"}
    encoded = encode_userinfo(claims)
    assert "=" not in encoded
    assert decode_userinfo(encoded) == claims
    padded = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode()
    assert decode_userinfo(padded) == claims


def test_roles_are_ordered() -> None:
    p = principal_from_claims({"sub": "u", "tenant": "acme", "role": "editor"})
    p.require(Role.viewer)
    p.require(Role.editor)
    with pytest.raises(Forbidden):
        p.require(Role.admin)


def test_missing_header_is_unauthenticated() -> None:
    with pytest.raises(Unauthenticated):
        principal_from_header(None)


@pytest.mark.parametrize("tenant", ["", "UPPER", "a/b", "-lead", "x" * 64, 5])
def test_tenant_must_be_a_safe_id(tenant: object) -> None:
    with pytest.raises(Forbidden):
        principal_from_claims({"sub": "u", "tenant": tenant, "role": "admin"})
