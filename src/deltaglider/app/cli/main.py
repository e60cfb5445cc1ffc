"""``from deltaglider.app.cli.main import cli``: the original DeltaGlider's import path of its
click command group, kept for compatibility.

The original's end-to-end tests and scripts import ``cli`` from here and drive it with click's
``CliRunner`` (in-process, with the endpoint and credentials in the environment:
``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ...). ``cli`` is our command group itself
(:data:`deltaglider.cli.cli`), not a copy: the same commands, options and output, and
``main`` is the console entry point. Nothing else of the original's ``app`` package (its
``create_service``, adapters) exists here.
"""

from __future__ import annotations

from ...cli import cli, main

__all__ = ["cli", "main"]
