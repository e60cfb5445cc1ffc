"""Where the original DeltaGlider kept its command line (``deltaglider.app.cli.main``).

Only :mod:`deltaglider.app.cli.main` lives here: it re-exports the ``deltaglider`` command,
so that code and tests written for the original (``from deltaglider.app.cli.main import
cli``, driven with click's ``CliRunner``) run unchanged. The command itself is
:mod:`deltaglider.cli`.
"""
