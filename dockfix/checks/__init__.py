"""Every module in this package declares checks; importing the package registers them all.
Checks import no fix and no change: a scan loads neither."""

import importlib
import pkgutil

for _mod in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_mod.name}")
