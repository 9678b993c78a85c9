"""The training methods, one module each, registered in one table.

A method (`generation.methods.base.Method`) decides which parameters a configuration trains and how a run saves,
loads and counts them. `METHODS` maps run.json's "kind" to the method; its order is the order `nle-gen params`
lists configurations in. Adding a method is one new module and one line in this table (docs/development.md).
"""

from __future__ import annotations

from generation.components import COMPONENTS, parse_configuration
from generation.methods import dect, full, peft, reft, sparse
from generation.methods.base import Method

METHODS: dict[str, Method] = {m.name: m for m in (
    sparse.METHOD,  # SparseFit: components joined by '+'
    full.METHOD,  # full_ft
    peft.METHOD,  # lora, lora_qkvo_r4, adalora, adalora_r32, ia3
    reft.METHOD,  # loreft
    dect.METHOD,  # dect (label only)
)}


def named_configurations() -> list[str]:
    """Every configuration a method offers by name (full_ft, the PEFT baselines, loreft, dect, ...)."""
    return [c for m in METHODS.values() for c in m.configurations]


def method_for(configuration: str) -> Method:
    """The method that trains `configuration`; ValueError naming every valid configuration otherwise."""
    for m in METHODS.values():
        if configuration in m.configurations:
            return m
    for m in METHODS.values():
        if m.accepts(configuration):
            return m
    parse_configuration(configuration, named_configurations())  # raises, with the reason and every valid name
    raise ValueError(f"no method trains configuration {configuration!r}; components: {', '.join(COMPONENTS)}")


def method_named(kind: str) -> Method:
    """The method of a run (run.json's "kind")."""
    if kind not in METHODS:
        raise ValueError(f"run.json kind {kind!r}: no such training method (known: {', '.join(METHODS)})")
    return METHODS[kind]


def listed(family: str) -> list[str]:
    """The configurations `nle-gen params` lists for a model family: SparseFit's, then every method's own."""
    return list(dict.fromkeys(c for m in METHODS.values() for c in m.listed(family)))
