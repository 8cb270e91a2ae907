"""A lying node for the trust tests: the real ``wowlab`` CLI, but its toy engine returns the
iterations of another seed. Its results are self-consistent (they pass every check a single
result can get) and wrong; only a second node's run can tell.

Run as ``python tests/core/liar_node.py node run ...`` (see test_trust_processes.py).
"""

from __future__ import annotations

from typing import Any

from wowlab_core.cli import main
from wowlab_core.testing.toy_engine import ToyEngine

_honest = ToyEngine.run_chunk


def _lying(self: ToyEngine, prepared: Any, *, seed: int, **kwargs: Any) -> Any:
    return _honest(self, prepared, seed=seed + 1, **kwargs)


ToyEngine.run_chunk = _lying  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
