"""``python -m wowlab_core`` runs the ``wowlab`` command line."""

from wowlab_core.cli import main

if __name__ == "__main__":
    main()
