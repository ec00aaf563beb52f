"""ASGI entry point for process managers: ``uvicorn --factory patra.asgi:create``.

Reads the configuration file named by ``PATRA_CONFIG`` (or only environment
variables when unset).
"""

from __future__ import annotations

import os

from litestar import Litestar

from patra.config import load_config
from patra.runtime import build
from patra.web.app import create_app


def create() -> Litestar:
    config = load_config(os.environ.get("PATRA_CONFIG") or None)
    run_background = os.environ.get("PATRA_NO_JOBS", "") == ""
    return create_app(build(config), run_background=run_background)
