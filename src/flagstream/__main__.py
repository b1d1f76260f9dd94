"""``python -m flagstream``: the ``flagstream`` command."""

from __future__ import annotations

from flagstream.cli import main

raise SystemExit(main())
