"""Tsukuba personal health record: the store and the services that read it."""

__version__ = "0.1.0"
