"""The dashboard's files as served: a page shell that is never cached and immutable assets.

Every file under `static/` except the shell is served at `/dashboard/assets/<build>/<path>`,
where `<build>` is a hash over all of them: any change gives every asset a new URL, so assets are
cached for a year while the shell (which names the build) is fetched fresh each time. Relative
ES module imports stay inside one build, so a page never mixes two releases.
"""

from __future__ import annotations

import hashlib
import html
import json
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHELL = "index.html"
PREFIX = "/dashboard/"
ASSETS = "assets/"
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".md": "text/plain; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class Asset:
    """One file's bytes, type and strong ETag."""

    body: bytes
    content_type: str
    etag: str


class Site:
    """The shell template and the assets of one release, read once per instance."""

    def __init__(self, static_dir: Path) -> None:
        files = sorted(p for p in static_dir.rglob("*") if p.is_file() and p.name != SHELL)
        digest = hashlib.sha256()
        loaded: dict[str, bytes] = {}
        for path in files:
            rel = path.relative_to(static_dir).as_posix()
            body = path.read_bytes()
            loaded[rel] = body
            digest.update(rel.encode() + b"\x00" + hashlib.sha256(body).digest())
        self.build = digest.hexdigest()[:16]
        self.assets = {
            f"{ASSETS}{self.build}/{rel}": Asset(
                body=body,
                content_type=_TYPES.get(Path(rel).suffix)
                or mimetypes.guess_type(rel)[0]
                or "application/octet-stream",
                etag='"' + hashlib.sha256(body).hexdigest()[:24] + '"',
            )
            for rel, body in loaded.items()
        }
        self._shell = (static_dir / SHELL).read_text(encoding="utf-8")

    @property
    def asset_base(self) -> str:
        """Where this release's assets live."""
        return f"{PREFIX}{ASSETS}{self.build}"

    def shell(self, config: dict[str, Any]) -> bytes:
        """The page shell naming this release's assets, with the client configuration as data."""
        text = self._shell.replace("{{ASSETS}}", self.asset_base)
        text = text.replace("{{CONFIG}}", html.escape(json.dumps(config, sort_keys=True), quote=True))
        return text.encode()
