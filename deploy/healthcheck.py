"""Container health check: exit 0 when the worker's public /health answers 200, else 1.

The slim image has no curl or wget; Python is already there. It asks the public listener, which
needs no token (the internal one answers 401 without it); the port comes from
``OMNISTREAM_PUBLIC_PORT`` like the worker's own, so both always agree.
"""

from __future__ import annotations

import os
import sys
import urllib.request


def main() -> int:
    port = os.environ.get("OMNISTREAM_PUBLIC_PORT", "6067")
    url = f"http://127.0.0.1:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
