"""``python -m eftflow`` is the same as the ``eftflow`` command."""

import sys

from eftflow.cli import main

sys.exit(main())
