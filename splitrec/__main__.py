"""``python -m splitrec`` is the ``splitrec`` command."""

import sys

from splitrec.cli import main

if __name__ == "__main__":
    sys.exit(main())
