"""Deprecated alias of :mod:`rftjudge.app.cli` (moved in 0.2; this spelling goes in 0.3).

Importing it gives the same module object, so existing imports and monkeypatches keep working.
"""

import sys
import warnings

from .app import cli as _module

warnings.warn(
    "rftjudge.cli moved to rftjudge.app.cli; import it from there",
    DeprecationWarning,
    stacklevel=2,
)
if __name__ == "__main__":  # python -m rftjudge.cli
    _module.main()
sys.modules[__name__] = _module
