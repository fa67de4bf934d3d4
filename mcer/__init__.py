"""Registered mcer plugins. Every submodule is imported, so a new file registers itself."""

from harness._autoimport import import_submodules

import_submodules(__name__)
