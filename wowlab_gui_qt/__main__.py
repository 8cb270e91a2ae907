"""``python -m wowlab_gui_qt``: the desktop app (what the start-at-login entry runs)."""

from wowlab_gui_qt.cli import main

main()
