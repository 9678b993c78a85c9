"""The annotation store: `Store`, the one object the app, the CLI, the analysis and the tests talk to.

`Store` holds a `Database` (database.py: connections, the write transaction and lock, migrations) and one object
per noun, each in its own module on top of it, the way sqlite-utils gives `Table` its own class:

    studies.py      Studies       create, find and name studies; guidelines
    items.py        Items         NLE import; the researcher's view of items and their metric scores
    annotators.py   Annotators    annotators, access codes, sign-in, sessions, the resume-token key
    queue.py        Queue         each annotator's queue, reservations, the blind view of an item
    ratings.py      Ratings       answers in, ratings out, ratings imported from elsewhere
    settings.py     Settings      a study's assignment settings, progress, attention checks
    crowd.py        Crowd         join links, workers and their resume codes, the finished screen
    adjudication.py Adjudication  final answers where annotators disagree
    pairwise.py     Pairwise      pairwise studies: pair items, sides, preferences in and out

Each noun takes the database and the nouns it needs; the Store only builds them and forwards its methods (one
line each, below), so every query lives in exactly one noun module. What depends on a study's kind (rating,
pairwise: `annotate.core.kinds`) is asked of the kind by `StudyKinds`: which kind a study is, and its export.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

import sqlite_utils

from annotate.core.exporting import EXPORT_COLUMNS
from annotate.core.importing import GOLD_CONFIG, ImportResult, PairImportResult
from annotate.core.kinds import StudyKinds
from annotate.core.schema import now_iso
from annotate.core.store.adjudication import DISAGREEMENT_KINDS, Adjudication
from annotate.core.store.annotators import Annotators
from annotate.core.store.crowd import Crowd
from annotate.core.store.database import Database
from annotate.core.store.items import Items
from annotate.core.store.pairwise import Pairwise
from annotate.core.store.queue import Queue
from annotate.core.store.ratings import Ratings
from annotate.core.store.settings import Settings
from annotate.core.store.studies import Studies

__all__ = ["DISAGREEMENT_KINDS", "EXPORT_COLUMNS", "GOLD_CONFIG", "Database", "ImportResult", "PairImportResult",
           "Store", "now_iso"]

P = ParamSpec("P")
R = TypeVar("R")


class _Forward(Generic[P, R]):
    """A Store method that is a noun's method of the same name: `store.submit` is `store._ratings.submit`, the
    bound method itself, with its signature and docstring."""

    def __init__(self, noun: str, method: Callable[Concatenate[Any, P], R]) -> None:
        self.noun, self.name = noun, method.__name__
        self.__doc__, self.__wrapped__ = method.__doc__, method

    def __set_name__(self, owner: type, name: str) -> None:
        if name != self.name:
            raise TypeError(f"Store.{name} must forward to a method of the same name, not {self.name}")

    @overload
    def __get__(self, store: None, owner: type) -> _Forward[P, R]: ...

    @overload
    def __get__(self, store: Store, owner: type) -> Callable[P, R]: ...

    def __get__(self, store: Store | None, owner: type) -> Any:
        return self if store is None else getattr(getattr(store, self.noun), self.name)


class Store:
    """All reads and writes of the annotation database, one noun module each (see the module docstring)."""

    def __init__(self, path: str | Path = ":memory:", *, busy_timeout_ms: int = 30_000) -> None:
        self.database = db = Database(path, busy_timeout_ms=busy_timeout_ms)
        self.path = db.path
        self._studies = Studies(db)
        self._queue = Queue(db)
        self._annotators = Annotators(db, self._studies, self._queue)
        self._pairwise = Pairwise(db, self._studies, self._queue, self._annotators)
        self._kinds = StudyKinds(self)
        self._items = Items(db, self._studies, self._queue, self._kinds)
        self._ratings = Ratings(db, self._studies, self._queue, self._annotators, self._items, self._kinds)
        self._settings = Settings(db, self._studies, self._queue)
        self._crowd = Crowd(db, self._studies, self._queue, self._annotators)
        self._adjudication = Adjudication(db, self._studies)
        db.migrate()

    # -- the database ------------------------------------------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        return self.database.conn

    @property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils over this thread's connection."""
        return self.database.utils

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return self.database.transaction()

    @property
    def _writer(self) -> Any:
        """The write lock this Store's transactions take (shared by every Store on the same file)."""
        return self.database.writer

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    migrate = _Forward("database", Database.migrate)
    close = _Forward("database", Database.close)
    integrity_check = _Forward("database", Database.integrity_check)
    backup = _Forward("database", Database.backup)
    backup_bytes = _Forward("database", Database.backup_bytes)
    counts = _Forward("database", Database.counts)

    # -- the nouns ---------------------------------------------------------------------------------------------

    create_study = _Forward("_studies", Studies.create_study)
    get_study = _Forward("_studies", Studies.get_study)
    study_by_id = _Forward("_studies", Studies.study_by_id)
    studies = _Forward("_studies", Studies.studies)
    resolve_study = _Forward("_studies", Studies.resolve_study)
    target_study = _Forward("_studies", Studies.target_study)
    set_guidelines = _Forward("_studies", Studies.set_guidelines)

    import_nles = _Forward("_items", Items.import_nles)
    items_frame = _Forward("_items", Items.items_frame)
    metrics_frame = _Forward("_items", Items.metrics_frame)

    add_annotator = _Forward("_annotators", Annotators.add_annotator)
    reset_code = _Forward("_annotators", Annotators.reset_code)
    end_sessions = _Forward("_annotators", Annotators.end_sessions)
    session_generation = _Forward("_annotators", Annotators.session_generation)
    resume_key = _Forward("_annotators", Annotators.resume_key)
    annotator_by_id = _Forward("_annotators", Annotators.annotator_by_id)
    annotators = _Forward("_annotators", Annotators.annotators)
    authenticate = _Forward("_annotators", Annotators.authenticate)
    check_admin_password = _Forward("_annotators", Annotators.check_admin_password)

    queue_length = _Forward("_queue", Queue.queue_length)
    answered_count = _Forward("_queue", Queue.answered_count)
    next_unanswered = _Forward("_queue", Queue.next_unanswered)
    queue_number = _Forward("_queue", Queue.queue_number)
    neighbour = _Forward("_queue", Queue.neighbour)
    holds_most_open = _Forward("_queue", Queue.holds_most_open)
    annotator_item = _Forward("_queue", Queue.annotator_item)

    submit = _Forward("_ratings", Ratings.submit)
    history = _Forward("_ratings", Ratings.history)
    ratings_frame = _Forward("_ratings", Ratings.ratings_frame)
    analysis_frames = _Forward("_ratings", Ratings.analysis_frames)
    import_ratings = _Forward("_ratings", Ratings.import_ratings)
    import_rated_items = _Forward("_ratings", Ratings.import_rated_items)

    assignment_settings = _Forward("_settings", Settings.assignment_settings)
    configure_study = _Forward("_settings", Settings.configure_study)
    study_settings = _Forward("_settings", Settings.study_settings)
    progress = _Forward("_settings", Settings.progress)
    attention_frame = _Forward("_settings", Settings.attention_frame)

    open_joining = _Forward("_crowd", Crowd.open_joining)
    close_joining = _Forward("_crowd", Crowd.close_joining)
    join = _Forward("_crowd", Crowd.join)
    finish = _Forward("_crowd", Crowd.finish)
    completion = _Forward("_crowd", Crowd.completion)

    set_adjudication = _Forward("_adjudication", Adjudication.set_adjudication)
    adjudications_frame = _Forward("_adjudication", Adjudication.adjudications_frame)

    study_kind = _Forward("_kinds", StudyKinds.study_kind)
    export_bytes = _Forward("_kinds", StudyKinds.export_bytes)
    export = _Forward("_kinds", StudyKinds.export)

    pairwise_setup = _Forward("_pairwise", Pairwise.pairwise_setup)
    set_rate_sides = _Forward("_pairwise", Pairwise.set_rate_sides)
    import_pairwise = _Forward("_pairwise", Pairwise.import_pairwise)
    annotator_pair = _Forward("_pairwise", Pairwise.annotator_pair)
    submit_preference = _Forward("_pairwise", Pairwise.submit_preference)
    preferences_frame = _Forward("_pairwise", Pairwise.preferences_frame)
    preferences_export_frame = _Forward("_pairwise", Pairwise.preferences_export_frame)
    import_preferences = _Forward("_pairwise", Pairwise.import_preferences)
    pair_explanations = _Forward("_pairwise", Pairwise.pair_explanations)
