"""The ``wowlab`` command: ``python -m wowlab_core``, and the console script's entry point.

:func:`run` is kept apart from :mod:`wowlab_core.cli` so that Ctrl-C while the CLI's
modules are still being imported (a second or so on a slow disk) ends quietly with exit
code 130 instead of a traceback.
"""

from __future__ import annotations

import signal
import sys


def run() -> None:
    """Import the CLI and run it; Ctrl-C at any moment exits with 130 and no traceback."""
    try:
        from wowlab_core.cli import main

        main()
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C while exiting
        sys.exit(130)


if __name__ == "__main__":
    run()
