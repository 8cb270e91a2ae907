"""wowlab on Supabase: SQL migrations (tables, RLS, node RPC functions, Realtime, pg_cron),
the ``supabase`` node transport over supabase-py, and the finisher that merges results."""

from __future__ import annotations

__all__: list[str] = []
