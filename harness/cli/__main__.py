"""``python -m harness.cli``: the ``cilbench`` command."""

import sys

from harness.cli import main

sys.exit(main())
