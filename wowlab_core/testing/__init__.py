"""Test kits for wowlab and its plugins: fixtures, a toy engine, and conformance suites.

Installed as the pytest plugin ``wowlab`` (entry point ``pytest11``), so a third-party
transport's test suite gets the fixtures by installing wowlab. See
:mod:`wowlab_core.testing.conformance` for the transport conformance suite.
"""
