"""Security headers for every dashboard response.

No inline script or style, nothing framed, no MIME sniffing, no referrer. `connect-src` names
the API's own origin, the storage origin signed uploads go to and, when the deployment signs in
with Firebase, the Google endpoints its SDK calls; `frame-src` only Firebase's auth domain.
"""

from __future__ import annotations

from urllib.parse import urlsplit

FIREBASE_CONNECT = (
    "https://identitytoolkit.googleapis.com",
    "https://securetoken.googleapis.com",
    "https://www.googleapis.com",
)
CLOUD_STORAGE = "https://storage.googleapis.com"


def origin(url: str) -> str:
    """`scheme://host[:port]` of a URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(*, upload_origin: str, firebase_auth_domain: str | None) -> str:
    """The CSP for the shell and its assets."""
    connect = ["'self'", upload_origin]
    frames = ["'none'"]
    if firebase_auth_domain:
        connect += list(FIREBASE_CONNECT)
        frames = [f"https://{firebase_auth_domain}"]
    directives = {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": connect,
        "frame-src": frames,
        "manifest-src": ["'self'"],
        "base-uri": ["'none'"],
        "form-action": ["'none'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def security_headers(csp: str, *, popups: bool) -> dict[str, str]:
    """Headers every response carries (`popups`: Firebase's sign-in popup must talk back)."""
    return {
        "Content-Security-Policy": csp,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin-allow-popups" if popups else "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
        "Strict-Transport-Security": "max-age=31536000",
    }
