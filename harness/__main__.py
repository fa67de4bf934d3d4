"""``python -m harness`` runs the mcer-bench command line."""

from harness.cli import main

raise SystemExit(main())
