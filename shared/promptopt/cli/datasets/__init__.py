"""`promptopt datasets ...`: create, upload a new version, get, list, sample, rows, delete, bundled.

A file of at most `files.INLINE_MAX_BYTES` travels inside the JSON body of the create call; a larger
one is PUT to the signed URL the API answers with (straight to Cloud Storage: not through the API's
base URL and without the bearer token), with a progress bar on stderr. `--wait` then polls the
dataset until the new version is ready or failed.

    api       the /datasets endpoints over the CLI's client
    files     the file to send: checks, format, inline content, split shares
    bundled   the datasets shipped with the repository
    upload    the signed-URL PUT, its progress bar, retries and Cloud Storage's errors
    waiting   following a version until it is ready or failed
    render    human views
    commands  the command handlers
    parser    the `datasets` group's arguments
"""
