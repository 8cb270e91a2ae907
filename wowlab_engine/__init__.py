"""wowlab_engine: a data-driven combat engine (numba) with a pure-Python reference build.

Configs are JSON (see :mod:`wowlab_engine.config` and ``wowlab engine schema``); results are
exact :class:`wowlab_core.results.ChunkResult` values, identical for a seed however a job is
chunked, compiled or not.
"""

#: Part of a chunk result's identity (jobs pin it; verification replays under it), so it
#: changes whenever a result changes: 0.2.0 reports the histogram in format 2 (0.1 %
#: buckets), and a 0.1.0 node's result would not compare equal to a 0.2.0 node's.
__version__ = "0.2.0"

__all__ = ["__version__"]
