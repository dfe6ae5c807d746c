"""The module contract: how other platform domains (shelter, home care, ...) attach.

A module is a Python package registered under the entry-point group ``phr.modules``
whose entry point names a :class:`~phr.modules.contract.PhrModule`. The platform
discovers modules at start-up (:mod:`phr.modules.registry`), mounts each module's router
under ``/modules/<name>/`` and gives it only a consent-checked reader
(:class:`~phr.modules.reader.ModuleReader`): the caller's actor with ``service=<name>``,
so that nothing is read without the module's approved PIA, and restricted to the
purposes and resource types the module declared. See ``docs/modules.md``.
"""

from phr.modules.contract import ENTRY_POINT_GROUP, PhrModule
from phr.modules.reader import ModuleReader, module_reader

__all__ = ["ENTRY_POINT_GROUP", "ModuleReader", "PhrModule", "module_reader"]
