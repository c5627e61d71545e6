"""``python -m gaussum.cli``: the ``gaussum`` command."""

import sys

from .parser import main

sys.exit(main())
