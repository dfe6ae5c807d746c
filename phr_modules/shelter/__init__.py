"""The shelter module (避難所, 医療の継続): shelter staff identify an evacuee the way
paramedics do and see the medicines to continue, allergies and problems; a list of the
evacuees checked in and those who need support. See docs/shelter.md.

The manifest is ``phr_modules.shelter.module:MODULE`` (entry point ``shelter`` of the
group ``phr.modules``); this package's root stays light so that importing its tables
(``models``) does not import its pages.
"""

from consent.actors import Purpose
from consent.engine import DISASTER_SET

NAME = "shelter"
PURPOSE = Purpose.DISASTER
RESOURCE_TYPES = frozenset(DISASTER_SET)
