"""The Store's layout (docs/development.md): a facade that forwards to one object per noun on one Database."""

from __future__ import annotations

import inspect
from pathlib import Path

import annotate.core.store as store_package
from annotate.core.store import Database, Store, _Forward
from annotate.core.store.pairwise import Pairwise

# docs/development.md: no module of the store over about 300 lines.
MOST_LINES = 320


def test_every_public_store_method_forwards_to_the_noun_that_defines_it() -> None:
    store = Store()
    public = [name for name in dir(Store) if not name.startswith("_")]
    assert len(public) > 60
    for name in public:
        attr = inspect.getattr_static(Store, name)
        if name in ("conn", "db"):
            assert isinstance(attr, property)
            continue
        assert isinstance(attr, _Forward), f"Store.{name} holds logic; put it in a noun module"
        bound = getattr(store, name)
        noun = getattr(store, attr.noun)
        assert bound.__self__ is noun and bound.__func__ is getattr(type(noun), name)
        assert inspect.signature(bound) == inspect.signature(getattr(noun, name))
        assert getattr(Store, name).__doc__ == getattr(type(noun), name).__doc__
    store.close()


def test_the_pairwise_noun_is_built_on_the_database_not_mixed_into_the_store() -> None:
    assert Pairwise not in Store.__mro__ and Store.__mro__ == (Store, object)
    store = Store()
    assert store._pairwise.db is store.database and isinstance(store.database, Database)
    store.close()


def test_no_module_of_the_store_is_longer_than_about_300_lines() -> None:
    folder = Path(store_package.__file__).parent
    lengths = {p.name: len(p.read_text().splitlines()) for p in folder.glob("*.py")}
    assert len(lengths) == 11 and max(lengths.values()) <= MOST_LINES, lengths
