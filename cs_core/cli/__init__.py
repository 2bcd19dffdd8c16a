"""The ``containers-storage`` command-line interface (entry point :func:`cs_core.cli.main.main`).

Commands are click commands declared with :mod:`cs_core.cli.base`, one module per family; they
are parsed with Go ``mflag`` rules by :mod:`cs_core.cli.parser`.
"""
