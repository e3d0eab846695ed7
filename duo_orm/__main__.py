"""``python -m duo_orm``: the same as the ``duo-orm`` command."""

import sys

from .cli import main

sys.exit(main())
