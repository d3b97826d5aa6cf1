"""``python -m pixtools``: the same command line as the ``pixtools`` script."""

from pixtools.cli import main

raise SystemExit(main())
