"""The app's pages: setup, claim, dashboard, settings, logs (and the header above them)."""
