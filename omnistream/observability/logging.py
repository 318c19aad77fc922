"""Logging setup. We configure logging ourselves instead of letting Faust do it.

Faust's own setup (``faust worker -l ...``) sets the root logger to DEBUG, which makes every
aiokafka/faust ``log.debug`` build a record: about a fifth of the time of a table-heavy run.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["setup_logging"]

_NOISY = ("aiokafka", "faust", "mode", "aiohttp", "kafka")


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _NOISY:
        logging.getLogger(name).setLevel(max(logging.getLevelName(level), logging.WARNING))
