"""Deprecated alias of :mod:`rftjudge.app.config` (moved in 0.2; this spelling goes in 0.3).

Importing it gives the same module object, so existing imports and monkeypatches keep working.
"""

import sys
import warnings

from .app import config as _module

warnings.warn(
    "rftjudge.config moved to rftjudge.app.config; import it from there",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _module
