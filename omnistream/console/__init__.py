"""The journey console: server-rendered HTML on the internal listener (docs/console.md).

Pure page builders (``markup``, ``graph``, ``live_figures``, ``preview``, ``pages_*``) take plain
dicts and models; the runtime side (``routes``, ``live``, ``forward``, ``reads``, ``tail``)
fetches the figures and rows and is installed by ``runtime/app.py`` with ``routes.install``.
This package imports nothing at import time, so ``runtime/web_auth.py`` can use its login page.
"""
