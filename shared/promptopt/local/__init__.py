"""The local stack: emulators, function host, API gateway stand-in and dev token issuer (never bundled)."""
