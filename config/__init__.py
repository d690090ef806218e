"""Settings of sync-worker, read from the environment (prefix ``SYNC_``, nested delimiter ``__``).

This package only declares settings. Importing it creates nothing: the composition root calls
:func:`load_settings` once and passes the result on.
"""

from config.errors import SettingsError
from config.settings import Settings, load_settings

__all__ = ["Settings", "SettingsError", "load_settings"]
