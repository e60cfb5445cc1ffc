"""The original DeltaGlider's command-line package path; see :mod:`deltaglider.app.cli.main`."""
