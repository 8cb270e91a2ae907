"""Test kits for wowlab and its plugins: fixtures, a toy engine, and conformance suites.

Installed as the pytest plugin ``wowlab`` (entry point ``pytest11``), so a third-party
plugin's test suite gets the fixtures by installing wowlab. They are all named ``wowlab_*``
(see :mod:`wowlab_core.testing.plugin`), so they never shadow a project's own ``db`` or
``coordinator``. :func:`wait_until` polls a condition; the transport conformance suite is
:mod:`wowlab_core.testing.conformance`.
"""

from wowlab_core.testing.waiting import wait_until

__all__ = ["wait_until"]
