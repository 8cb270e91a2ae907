"""How people see a report's rows: names humanised, damage apart from cooldowns.

Shared by the CLI, the portal's job page and the standalone HTML report, so the three
show the same names and the same grouping, for reports of every version (an engine may
give a row a ``label``, e.g. from the config; older reports have none).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

_WORD = re.compile(r"[A-Za-z0-9]+")
#: Words that stay lower case inside a name, as in the game ("Slice and Dice").
_MINOR = frozenset({"a", "an", "and", "as", "at", "by", "for", "from", "in", "of", "on", "or"})
_MINOR |= {"the", "to", "with"}


def humanize(name: str) -> str:
    """``fire_blast`` -> ``Fire Blast``, ``mark_of_the_wild`` -> ``Mark of the Wild``: words
    split at ``_``, ``-``, ``.`` and spaces, each capitalised but the small joining words
    (letters after the first are kept as they are: ``DoT`` stays)."""
    words = _WORD.findall(name)
    return (
        " ".join(w if i and w in _MINOR else w[0].upper() + w[1:] for i, w in enumerate(words))
        or name
    )


def row_label(row: Mapping[str, Any], key: str) -> str:
    """A report row's display name: its ``label``, else its ``key`` (``ability``, ``aura``,
    ``proc`` ...) or ``name`` humanised."""
    label = row.get("label")
    if isinstance(label, str) and label:
        return label
    return humanize(str(row.get(key) or row.get("name") or "?"))


def is_utility(row: Mapping[str, Any]) -> bool:
    """An ability that was cast but dealt no damage (a cooldown, a buff, a resource spell).

    Only a row that reports its damage can say so: an engine whose rows have no ``damage``
    or ``dps`` keeps them all as abilities.
    """
    if "damage" not in row and "dps" not in row:
        return False
    dealt = float(row.get("damage") or 0) or float(row.get("dps") or 0)
    return not dealt and float(row.get("executes") or 0) > 0


def split_abilities(
    rows: Sequence[Mapping[str, Any]],
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """``(damage, utility)``: abilities that dealt damage, and the cooldowns and utility
    spells that were only cast (kept apart so they do not show as 0-DPS abilities)."""
    damage = [r for r in rows if not is_utility(r)]
    utility = [r for r in rows if is_utility(r)]
    return damage, utility


__all__ = ["humanize", "is_utility", "row_label", "split_abilities"]
