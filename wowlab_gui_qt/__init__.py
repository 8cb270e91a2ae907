"""wowlab's desktop app for a node (PySide6): setup, claim view, dashboard, settings, logs
and a tray icon, on the same node agent as ``wowlab node run``.

Start it with ``wowlab gui`` or the ``wowlab-gui`` launcher; ``wowlab gui --screenshot FILE
--view VIEW`` renders one view offscreen.
"""

from __future__ import annotations
