"""Platform modules of other city domains that ship with the platform (docs/modules.md).

Each sub-package is a module under the module contract (``phr.modules``): registered by
its own ``phr.modules`` entry point in ``pyproject.toml``, mounted under
``/modules/<name>/``, reading residents' records only through its consent-checked reader.
Nothing in the platform core names them.
"""
