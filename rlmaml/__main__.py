"""``python -m rlmaml`` runs the command-line interface."""

from rlmaml.cli import main

raise SystemExit(main())
