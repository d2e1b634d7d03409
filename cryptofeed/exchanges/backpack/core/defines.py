"""Constants of the Backpack integration that every module may import (no internal imports).

``BACKPACK`` is the exchange id; cryptofeed's own ``defines.py`` belongs to the released
library, so it lives here (DESIGN D2).
"""
from __future__ import annotations

__all__ = ['BACKPACK']

BACKPACK = 'BACKPACK'
