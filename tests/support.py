"""Helpers shared by the test tiers: identities and in-process function apps."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import functions_framework
from flask import Flask

from promptopt.auth import USERINFO_HEADER, encode_userinfo

ROOT = Path(__file__).resolve().parents[1]


def new_tenant() -> str:
    """A tenant id no other test uses (tests share one emulator)."""
    return "t-" + uuid.uuid4().hex[:12]


def claims_header(tenant: str, role: str, subject: str = "user-1", **extra: Any) -> dict[str, str]:
    """The header API Gateway would forward for a verified token with these claims."""
    claims = {"sub": subject, "tenant": tenant, "role": role, **extra}
    return {USERINFO_HEADER: encode_userinfo(claims)}


def load_app(name: str) -> Flask:
    """The function's app as functions-framework builds it.

    Every main.py registers itself as module `main`; dropping that entry after loading keeps one
    function's module from being mistaken for another's.
    """
    source = ROOT / "functions" / name / "main.py"
    try:
        return functions_framework.create_app(target="handle", source=str(source))
    finally:
        sys.modules.pop("main", None)
