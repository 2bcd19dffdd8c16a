"""The overlay graph driver plugin for containers-storage for Python.

Registered under the ``cs_core.graphdrivers`` entry-point name ``overlay`` (alias ``overlay2``);
:mod:`cs_driver_overlay.plugin` is the light hook module, :mod:`cs_driver_overlay.driver` the
driver itself (imported only when the driver is selected).
"""
