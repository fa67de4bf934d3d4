"""``python -m harness`` runs the mcer-bench command line (the run layer's entry point)."""

from harness.run.cli import main

raise SystemExit(main())
