"""``python -m deltaglider.cli``: the ``deltaglider`` command."""

from . import main

raise SystemExit(main())
