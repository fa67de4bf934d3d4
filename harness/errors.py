"""Errors shared across the framework (kept apart so that modules raising them import nothing else)."""

from __future__ import annotations


class RegistryError(KeyError):
    """Raised for unknown names, duplicate registrations and invalid options.

    Subclasses KeyError for callers that catch lookups, but prints its message plainly.
    """

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class PresetError(RegistryError, ValueError):
    """An unknown preset name, or a spec that does not fit the preset's reference configuration.

    A :class:`RegistryError` (like an unknown name or option) and a ``ValueError`` (bad value).
    """


class OptionError(RegistryError, ValueError):
    """An option value that its plugin's declaration refuses (wrong type, not one of the choices,
    outside the declared range): a :class:`RegistryError` and a ``ValueError`` (bad value)."""


class DataError(ValueError):
    """A dataset file is malformed; the message names the file, the key and the item."""
