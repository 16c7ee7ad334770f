"""``python -m cdchub.cli …``: how the supervisor, the tests and the benchmarks start cdchub's processes."""

import sys

from cdchub.cli import main

sys.exit(main())
