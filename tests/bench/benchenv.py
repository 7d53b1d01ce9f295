"""Where the benchmark scripts find the test bed and the test helpers.

Each script starts with

    sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
    import benchenv

which works from tests/bench and from the links in build/bench alike.
"""

import os
import sys

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.realpath(__file__))))

for sub in ("testbed", "integration", "bench"):
    path = os.path.join(TOP, "tests", sub)
    if path not in sys.path:
        sys.path.insert(0, path)
