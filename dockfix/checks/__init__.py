"""Every module in this package declares checks; importing the package registers them all."""

import importlib
import pkgutil

for _mod in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_mod.name}")

# Attach the fixes to the checks just declared (each fix module imports the checks it fixes).
from dockfix.fixes import load_all as _load_fixes  # noqa: E402

_load_fixes()
