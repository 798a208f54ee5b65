"""``python -m hopx_kernel.server``: run the local sandbox server."""

import sys

from .main import main

sys.exit(main())
