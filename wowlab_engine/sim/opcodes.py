"""Opcodes of the condition bytecode (a stack machine over floats).

Loads push one value; comparisons, AND and OR pop two and push 0.0 or 1.0; NOT and IS_TRUE
replace the top value. See :mod:`wowlab_engine.conditions` for the grammar.
"""

OP_CONST = 0  # argument: index into the constant table
OP_TIME = 1  # seconds since the pull
OP_FIGHT_REMAINS = 2  # seconds
OP_HEALTH_PCT = 3  # of the primary target
OP_ACTIVE_ENEMIES = 4
OP_RESOURCE = 5  # argument: resource index
OP_AURA_STACK = 6  # argument: aura index (player aura, or on the primary target)
OP_AURA_REMAINS = 7  # seconds
OP_CHARGES = 8  # argument: spell index
OP_COOLDOWN_REMAINS = 9  # seconds
OP_LT = 20
OP_LE = 21
OP_GT = 22
OP_GE = 23
OP_EQ = 24
OP_NE = 25
OP_AND = 26
OP_OR = 27
OP_NOT = 28
OP_IS_TRUE = 29
