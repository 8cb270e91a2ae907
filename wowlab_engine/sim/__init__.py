"""The simulation kernel: rng, event heap, state and the event loop.

Every module here uses :data:`wowlab_engine.sim._jit.jit`. The package is imported twice:
once as ``wowlab_engine.sim`` (compiled with numba) and once, by
:func:`wowlab_engine.sim.loader.pure_python_kernel`, under another name where ``jit`` is the
identity, which gives the pure-Python reference engine running the very same code.
"""
