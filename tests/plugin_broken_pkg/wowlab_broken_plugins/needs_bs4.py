"""A plugin whose dependency (beautifulsoup4, imported as ``bs4``) is not installed."""

from __future__ import annotations

import bs4  # noqa: F401  (beautifulsoup4: deliberately missing in the test environment)
