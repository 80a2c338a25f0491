"""``python -m execctl``: the same as the ``execctl`` command."""

import sys

from execctl.main import main

sys.exit(main())
