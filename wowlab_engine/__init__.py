"""wowlab_engine: a data-driven combat engine (numba) with a pure-Python reference build.

Configs are JSON (see :mod:`wowlab_engine.config` and ``wowlab engine schema``); results are
exact :class:`wowlab_core.results.ChunkResult` values, identical for a seed however a job is
chunked, compiled or not.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
