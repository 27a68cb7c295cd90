"""``python -m gateway`` is the ``einblick`` command."""

import sys

from gateway.cli import main

sys.exit(main())
