"""The CLI's retries are the client's: this name stays an alias of `promptopt.client.retries`.

The module object itself is shared (not a copy of its names), so setting `RETRY_BACKOFF_S` through
either name changes the backoff of every HTTP call the CLI and the client make.
"""

import sys

from promptopt.client import retries as _retries

sys.modules[__name__] = _retries
