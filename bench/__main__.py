"""`python -m bench ...` runs the CLI (used by `accelerate launch -m bench`)."""

import sys

from bench.cli import main

sys.exit(main())
