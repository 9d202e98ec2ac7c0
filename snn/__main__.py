"""``python -m snn``: the ``snn`` command."""

import sys

from snn.cli import main

if __name__ == "__main__":
    sys.exit(main())
