"""``python -m deltaglider``: the ``deltaglider`` command."""

from .cli import main

raise SystemExit(main())
