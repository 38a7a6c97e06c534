"""Deprecated alias of :mod:`rftjudge.app.scoring` (moved in 0.2; this spelling goes in 0.3).

Importing it gives the same module object, so existing imports and monkeypatches keep working.
"""

import sys
import warnings

from .app import scoring as _module

warnings.warn(
    "rftjudge.scoring moved to rftjudge.app.scoring; import it from there",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _module
