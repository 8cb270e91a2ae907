"""wowlab portal: the self-hosted FastAPI app (node endpoints of the HTTP transport, ...).

Build it with :func:`wowlab_portal.app.create_app`; serve it with ``wowlab portal serve``.
"""

from __future__ import annotations

__all__: list[str] = []
