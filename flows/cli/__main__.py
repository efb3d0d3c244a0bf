"""``python -m mnist_pipeline.flows.cli``: the ``mnist`` command."""

from mnist_pipeline.flows.cli import main

raise SystemExit(main())
