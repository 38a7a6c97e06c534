"""Deprecated alias of :mod:`rftjudge.app.local` (moved in 0.2; this spelling goes in 0.3).

Importing it gives the same module object, so existing imports and monkeypatches keep working.
"""

import sys
import warnings

from .app import local as _module

warnings.warn(
    "rftjudge.local moved to rftjudge.app.local; import it from there",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _module
