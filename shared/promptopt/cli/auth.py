"""`promptopt auth ...`: tokens for the local stack and tenant/role claims for production users."""

from __future__ import annotations

import argparse
import re
from typing import Any

from promptopt.cli import argtypes, output
from promptopt.cli.core.commands import Groups, command_group
from promptopt.cli.core.context import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CliError, Context, Handler

# Kept here (not imported from promptopt.auth) so building the parser stays free of pydantic;
# a unit test proves they match the API's own rules.
ROLES = ("viewer", "editor", "admin")
TENANT_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
_TENANT_RE = re.compile(TENANT_PATTERN)
FIREBASE_APP_NAME = "promptopt-cli"
# promptopt.local.dev_issuer.MAX_TTL_S (an ID token's hour, the most the local gateway accepts),
# kept here so building the parser imports no crypto; a unit test proves they match.
MAX_DEV_TOKEN_TTL_S = 3600


def _tenant(text: str) -> str:
    if not _TENANT_RE.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a tenant id: 1-63 lowercase letters, digits or '-', "
            "starting with a letter or digit"
        )
    return text


def _ttl(text: str) -> int:
    value = argtypes.positive_int(text)
    if value > MAX_DEV_TOKEN_TTL_S:
        raise argparse.ArgumentTypeError(
            f"must be at most {MAX_DEV_TOKEN_TTL_S} (an ID token's lifetime; the gateway refuses more)"
        )
    return value


def _dev_token(args: argparse.Namespace, ctx: Context) -> int:
    try:
        from promptopt.local.dev_issuer import mint_token
    except ImportError as exc:
        raise CliError(
            f"the local dev issuer is not available ({exc}); dev tokens need a checkout with promptopt.local",
            EXIT_FAILURE,
        ) from None
    token = mint_token(tenant=args.tenant, role=args.role, subject=args.subject, ttl_s=args.ttl)
    if ctx.json:
        output.emit_json(
            {
                "token": token,
                "tenant": args.tenant,
                "role": args.role,
                "subject": args.subject,
                "ttl_s": args.ttl,
            }
        )
    else:
        output.emit(token)
    return EXIT_OK


def _firebase_app(project: str | None) -> Any:
    import firebase_admin

    options = {"projectId": project} if project else None
    # No credential given: firebase-admin uses Application Default Credentials (or, when
    # FIREBASE_AUTH_EMULATOR_HOST is set, the Auth emulator with no credentials at all).
    return firebase_admin.initialize_app(options=options, name=FIREBASE_APP_NAME)


def _set_claims(args: argparse.Namespace, ctx: Context) -> int:
    from promptopt.auth import ROLE_CLAIM, TENANT_CLAIM

    try:
        import firebase_admin.exceptions
        from firebase_admin import auth as firebase_auth
    except ImportError as exc:
        raise CliError(
            f"firebase-admin is not installed ({exc}); pip install firebase-admin", EXIT_FAILURE
        ) from None
    from google.auth.exceptions import DefaultCredentialsError

    app = None
    try:
        app = _firebase_app(args.project)
        user = firebase_auth.get_user(args.uid, app=app)
        # set_custom_user_claims replaces every custom claim: keep the ones that are not ours.
        claims = dict(user.custom_claims or {})
        claims.update({TENANT_CLAIM: args.tenant, ROLE_CLAIM: args.role})
        firebase_auth.set_custom_user_claims(args.uid, claims, app=app)
    except DefaultCredentialsError as exc:
        raise CliError(
            f"no Google credentials ({exc}); run `gcloud auth application-default login` "
            "or set GOOGLE_APPLICATION_CREDENTIALS",
            EXIT_FAILURE,
        ) from None
    except firebase_admin.exceptions.NotFoundError:
        raise CliError(f"no Firebase user with uid {args.uid!r}", EXIT_USAGE) from None
    except firebase_admin.exceptions.FirebaseError as exc:
        raise CliError(f"Firebase refused the change: {exc}", EXIT_FAILURE) from None
    except ValueError as exc:  # e.g. no project id could be determined
        raise CliError(f"{' '.join(str(exc).split())} (pass --project)", EXIT_USAGE) from None
    finally:
        if app is not None:
            firebase_admin.delete_app(app)
    if ctx.json:
        output.emit_json({"uid": args.uid, "custom_claims": claims})
    else:
        output.emit(f"set claims on user {args.uid}: {TENANT_CLAIM}={args.tenant} {ROLE_CLAIM}={args.role}")
        output.note(
            "note: they apply to ID tokens issued from now on; the user must sign in again or refresh"
        )
    return EXIT_OK


def register(groups: Groups, common: argparse.ArgumentParser) -> None:
    """Add the `auth` group and its commands to the top-level subparsers."""
    add = command_group(
        groups, common, "auth", help="tokens for the local stack, claims for production users"
    )

    def command(name: str, handler: Handler, **kwargs: Any) -> argparse.ArgumentParser:
        parser = add(name, handler, **kwargs)
        parser.add_argument("--tenant", type=_tenant, required=True, metavar="T", help="tenant id")
        parser.add_argument("--role", choices=ROLES, required=True, help="role in the tenant")
        return parser

    dev = command(
        "dev-token",
        _dev_token,
        help="print a token the LOCAL gateway accepts",
        description="Mint a short-lived RS256 token from the local dev issuer (never valid in production). "
        "Typical use: export PROMPTOPT_TOKEN=$(promptopt auth dev-token --tenant acme --role editor)",
    )
    dev.add_argument("--subject", default="dev-user", metavar="S", help="the token's sub (default dev-user)")
    dev.add_argument(
        "--ttl",
        type=_ttl,
        default=MAX_DEV_TOKEN_TTL_S,
        metavar="SECONDS",
        help=f"lifetime, at most {MAX_DEV_TOKEN_TTL_S} (default {MAX_DEV_TOKEN_TTL_S})",
    )

    claims = command(
        "set-claims",
        _set_claims,
        help="set a Firebase user's tenant and role claims (production)",
        description="Set the tenant and role custom claims on a Firebase Auth user with firebase-admin, "
        "using Application Default Credentials. Other custom claims of the user are kept.",
    )
    claims.add_argument("--uid", required=True, help="the Firebase Auth user id")
    claims.add_argument("--project", metavar="P", help="Google Cloud project (default: from the credentials)")
