"""Work-items benchmark: our service layer beside raw apsw, measured in the same run.

    .venv/bin/python benchmarks/items.py [--items N] [--quick] [--out FILE] [--tmpdir DIR]
                                         [--keep DIR]

Prints one JSON object on stdout (progress on stderr). For a workspace of N items (default
100,000) it measures:

1. ``create``: items/s through ``Items.create`` (one transaction per item) and through
   ``Items.import_rows`` (one transaction per batch), beside raw apsw writing the same rows
   (the item, its labels, the outbox event and the timeline entry; FTS through the same
   trigger) into a second workspace file with the same schema, the same way. The two sides
   alternate chunk by chunk. Statuses are then set for a sample through ``Items.transition``
   (timed) and for the rest with one SQL ``UPDATE`` per item in a single transaction (setup,
   not timed), which also spreads ``updated_at`` after ``created_at``.
2. ``list``: p50/p99 of ``Items.list_items(ItemQuery(...), cursor=..., limit=50)`` for every
   filter x sort x direction, first page and a deep page (``next_cursor`` followed ~20 pages in),
   beside a plain apsw connection running the exact SQL text of ``Items.statement`` (the
   statement the service runs, in the shape it chose) for the same query and cursor and
   fetching every row as tuples (the ceiling).
3. ``fts``: full-text search (a common, a medium and a rare word, two words, a prefix) the
   same way.
4. ``http``: a handful of lists through Litestar's TestClient against ``create_app(runtime)``
   with a bearer token, beside the same ``Items.list_items`` call.

Targets (issue 4): list p99 under 10 ms for every supported filter and sort, and our layer
within 1.5x of raw apsw (compared at p50, the stable statistic; p99 ratio reported too).
Every list or FTS case that misses either is named in ``misses``.

``--quick`` uses N=5,000 and fewer repetitions (a smoke test in well under 30 s); its numbers
are not meant to be quoted. ``--keep DIR`` builds in DIR and leaves the files there, to inspect
query plans or prototype index changes on a copy afterwards.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import math
import os
import random
import shlex
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import apsw
import msgspec
from _common import emit, log, machine_info, scratch_dir, utc_now
from faker.providers.lorem.en_US import Provider as LoremProvider

from workbench.auth import passwords
from workbench.auth.service import create_user
from workbench.auth.tokens import issue_token
from workbench.clock import isoformat
from workbench.config import load_settings
from workbench.ids import new_id
from workbench.items import service as items_service
from workbench.items.models import ItemCreate, ItemQuery
from workbench.items.service import Items
from workbench.plugins import get_plugin_manager
from workbench.runtime import Runtime
from workbench.workspaces.membership import add_member
from workbench.workspaces.service import create_workspace

SEED = 20260401
PAGE = 50
P99_TARGET_MS = 10.0
RATIO_TARGET = 1.5
STATUS_WEIGHTS = {"open": 35, "in_progress": 25, "done": 35, "archived": 5}
PRIORITY_WEIGHTS = {"none": 30, "low": 20, "medium": 30, "high": 15, "urgent": 5}
LABELS = (
    "bug", "feature", "frontend", "backend", "api", "ux", "docs", "tests", "security",
    "performance", "tech-debt", "customer", "billing", "auth", "search", "mobile", "ios",
    "android", "infra", "ci", "design", "data", "analytics", "onboarding", "i18n",
    "accessibility", "regression", "good-first-issue", "needs-triage", "wontfix",
)  # fmt: skip
ASSIGNEES = 20
UNASSIGNED_SHARE = 0.15
DUE_SHARE = 0.60
CREATED_FROM = datetime(2025, 6, 1, tzinfo=UTC)
DUE_FROM = date(2025, 9, 1)
SPAN = timedelta(days=365)
NARROW_DUE = ("2026-03-02", "2026-03-09")  # one week
WIDE_DUE = ("2026-01-01", "2026-04-01")  # one quarter
SORTS = ("created", "updated", "due", "priority")
DIRECTIONS = ("desc", "asc")


@dataclass(frozen=True, slots=True)
class Sizes:
    items: int
    single_creates: int
    """Items made one transaction each through ``Items.create`` (the rest: ``import_rows``)."""
    create_chunk: int
    import_batch: int
    transitions: int
    reps: int
    """Timed repetitions per side and list case (after ``warmup``), unless over budget."""
    min_reps: int
    warmup: int
    budget_s: float
    """Stop a case early once each side has spent this long and ``min_reps`` are done."""
    deep_pages: int
    fts_reps: int
    http_reps: int


FULL = Sizes(
    items=100_000,
    single_creates=5_000,
    create_chunk=250,
    import_batch=1_000,
    transitions=600,
    reps=200,
    min_reps=30,
    warmup=10,
    budget_s=2.0,
    deep_pages=20,
    fts_reps=300,
    http_reps=200,
)
QUICK = Sizes(
    items=5_000,
    single_creates=500,
    create_chunk=100,
    import_batch=500,
    transitions=60,
    reps=20,
    min_reps=10,
    warmup=3,
    budget_s=0.1,
    deep_pages=20,
    fts_reps=30,
    http_reps=20,
)


# -- time and data ---------------------------------------------------------------------------


class StepClock:
    """A clock that moves ``step`` forward at every reading while running, so items created
    in one go spread over a year of ``created_at``; frozen once the data is built."""

    def __init__(self, start: datetime, step: timedelta) -> None:
        self._now = start
        self.step = step

    def now(self) -> datetime:
        self._now += self.step
        return self._now

    def freeze(self) -> None:
        self.step = timedelta(0)


class Words:
    """Faker's English word list with Zipf frequencies in a seeded random rank order."""

    def __init__(self, rng: random.Random, exponent: float = 1.2) -> None:
        words = sorted({w.lower() for w in LoremProvider.word_list if w.isalpha() and len(w) > 2})
        rng.shuffle(words)
        self.ranked = words
        weights = [1.0 / (rank + 1) ** exponent for rank in range(len(words))]
        self.cum = list(itertools.accumulate(weights))

    def sample(self, rng: random.Random, k: int) -> list[str]:
        return rng.choices(self.ranked, cum_weights=self.cum, k=k)


def weighted(rng: random.Random, weights: dict[str, int], k: int) -> list[str]:
    return rng.choices(list(weights), weights=list(weights.values()), k=k)


@dataclass
class Dataset:
    records: list[dict[str, Any]]
    statuses: list[str]
    updated_after: list[timedelta | None]
    """How long after creation the item last changed (None: never edited)."""


def generate(n: int, rng: random.Random, words: Words, users: Sequence[str]) -> Dataset:
    """N create bodies with realistic shapes, deterministic for a seed."""
    label_cum = list(itertools.accumulate(1.0 / (r + 1) ** 1.3 for r in range(len(LABELS))))
    user_cum = list(itertools.accumulate(1.0 / (r + 1) ** 0.5 for r in range(len(users))))
    priorities = weighted(rng, PRIORITY_WEIGHTS, n)
    statuses = weighted(rng, STATUS_WEIGHTS, n)
    records: list[dict[str, Any]] = []
    updated_after: list[timedelta | None] = []
    for i in range(n):
        title_words = words.sample(rng, rng.randint(3, 9))
        body_words = words.sample(rng, rng.randint(12, 90))
        body = ". ".join(
            " ".join(body_words[j : j + 12]).capitalize() for j in range(0, len(body_words), 12)
        )
        record: dict[str, Any] = {
            "title": " ".join(title_words).capitalize(),
            "body": body + ".",
            "priority": priorities[i],
        }
        if rng.random() >= UNASSIGNED_SHARE:
            record["assignee"] = rng.choices(users, cum_weights=user_cum)[0]
        count = rng.choices((0, 1, 2, 3), weights=(30, 40, 20, 10))[0]
        labels: set[str] = set()
        while len(labels) < count:
            labels.add(rng.choices(LABELS, cum_weights=label_cum)[0])
        if labels:
            record["labels"] = sorted(labels)
        if rng.random() < DUE_SHARE:
            record["due_at"] = (DUE_FROM + timedelta(days=rng.randrange(365))).isoformat()
        records.append(record)
        touched = statuses[i] != "open" or rng.random() < 0.4
        updated_after.append(
            timedelta(seconds=rng.expovariate(1 / (10 * 86400))) if touched else None
        )
    return Dataset(records=records, statuses=statuses, updated_after=updated_after)


# -- measuring helpers -----------------------------------------------------------------------


def percentile(sorted_ns: Sequence[int], q: float) -> float:
    """Nearest-rank percentile of sorted nanosecond samples, in milliseconds."""
    index = max(0, math.ceil(q * len(sorted_ns)) - 1)
    return sorted_ns[index] / 1e6


def latency(samples_ns: list[int]) -> dict[str, float | int]:
    s = sorted(samples_ns)
    return {
        "p50_ms": round(percentile(s, 0.50), 3),
        "p99_ms": round(percentile(s, 0.99), 3),
        "mean_ms": round(statistics.fmean(s) / 1e6, 3),
        "max_ms": round(s[-1] / 1e6, 3),
        "n": len(s),
    }


def paired(
    ours: Callable[[], object], raw: Callable[[], object], sizes: Sizes, reps: int
) -> tuple[list[int], list[int]]:
    """Time ``ours`` and ``raw`` alternately (order swapped every repetition) after a warm-up;
    stop at ``reps``, or earlier once both sides spent ``budget_s`` and ``min_reps`` are in."""
    for _ in range(sizes.warmup):
        ours()
        raw()
    ours_ns: list[int] = []
    raw_ns: list[int] = []
    clock = time.perf_counter_ns
    budget = int(sizes.budget_s * 1e9)
    for rep in range(reps):
        pair = (
            ((ours, ours_ns), (raw, raw_ns)) if rep % 2 == 0 else ((raw, raw_ns), (ours, ours_ns))
        )
        for fn, out in pair:
            start = clock()
            fn()
            out.append(clock() - start)
        if rep + 1 >= sizes.min_reps and sum(ours_ns) > budget and sum(raw_ns) > budget:
            break
    return ours_ns, raw_ns


def open_raw(path: Path) -> apsw.Connection:
    """A plain apsw connection with the pragmas our layer sets (no sqlite-vec, no pool)."""
    conn = apsw.Connection(str(path))
    conn.set_busy_timeout(5000)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages: other processes on the machine skew p99."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


@contextmanager
def cheap_password_hashing() -> Iterator[None]:
    """Accounts are setup, not the subject: Argon2 at its cheapest, as in the tests."""
    from argon2 import PasswordHasher

    previous = passwords.use_hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    try:
        yield
    finally:
        passwords.use_hasher(previous)


# -- 1. creating -----------------------------------------------------------------------------

INSERT_ITEM = (
    "INSERT INTO items (id, workspace_id, title, body, status, priority, assignee, labels,"
    " due_at, fields, created_by, created_at, updated_at, version)"
    " VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?, '{}', NULL, ?, ?, 1)"
)
INSERT_LABEL = "INSERT OR IGNORE INTO item_labels (label, item_seq) VALUES (?, ?)"
INSERT_EVENT = (
    "INSERT INTO outbox (event_id, event_type, version, workspace_id, correlation_id,"
    " causation_id, actor, occurred_at, payload) VALUES (?, 'item.created', 1, ?, NULL, NULL,"
    " NULL, ?, ?)"
)
INSERT_ACTIVITY = (
    "INSERT INTO item_activity (item_id, workspace_id, kind, actor, correlation_id, event_id,"
    " data, created_at) VALUES (?, ?, 'created', NULL, NULL, ?, ?, ?)"
)
_json = msgspec.json.Encoder()


class RawWriter:
    """Writes what ``Items.create`` writes, with plain SQL on a bare connection."""

    def __init__(self, conn: apsw.Connection, workspace_id: str, clock: StepClock) -> None:
        self.conn = conn
        self.workspace_id = workspace_id
        self.clock = clock

    def _insert(self, record: dict[str, Any]) -> None:
        conn, ws = self.conn, self.workspace_id
        now = isoformat(self.clock.now())
        item_id, event_id = new_id("itm"), new_id("evt")
        labels = sorted(set(record.get("labels", ())))
        title = record["title"]
        conn.execute(
            INSERT_ITEM,
            (
                item_id,
                ws,
                title,
                record["body"],
                list(PRIORITY_WEIGHTS).index(record["priority"]),
                record.get("assignee"),
                _json.encode(labels).decode(),
                record.get("due_at"),
                now,
                now,
            ),
        )
        seq = conn.last_insert_rowid()
        conn.executemany(INSERT_LABEL, [(label, seq) for label in labels])
        payload = {"item_id": item_id, "title": title, "status": "open"}
        conn.execute(INSERT_EVENT, (event_id, ws, now, _json.encode(payload).decode()))
        data = _json.encode({"title": title}).decode()
        conn.execute(INSERT_ACTIVITY, (item_id, ws, event_id, data, now))

    def one_per_transaction(self, records: Sequence[dict[str, Any]]) -> None:
        for record in records:
            self.conn.execute("BEGIN IMMEDIATE")
            self._insert(record)
            self.conn.execute("COMMIT")

    def batch(self, records: Sequence[dict[str, Any]]) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        for record in records:
            self._insert(record)
        self.conn.execute("COMMIT")


def create_side_by_side(
    label: str,
    chunks: Sequence[Sequence[dict[str, Any]]],
    ours: Callable[[Sequence[dict[str, Any]]], None],
    raw: Callable[[Sequence[dict[str, Any]]], None],
) -> dict[str, Any]:
    ours_ns: list[int] = []
    raw_ns: list[int] = []
    total = 0
    for index, chunk in enumerate(chunks):
        order = (
            ((ours, ours_ns), (raw, raw_ns)) if index % 2 == 0 else ((raw, raw_ns), (ours, ours_ns))
        )
        for fn, out in order:
            start = time.perf_counter_ns()
            fn(chunk)
            out.append(time.perf_counter_ns() - start)
        total += len(chunk)
        if index % 20 == 19:
            log(f"  {label}: {total} items each side")
    ours_rate = total / (sum(ours_ns) / 1e9)
    raw_rate = total / (sum(raw_ns) / 1e9)
    chunk_rates = sorted(len(c) / (t / 1e9) for c, t in zip(chunks, ours_ns, strict=True))
    raw_chunk_rates = sorted(len(c) / (t / 1e9) for c, t in zip(chunks, raw_ns, strict=True))
    return {
        "items_each_side": total,
        "chunks": len(chunks),
        "ours": {
            "items_per_s": round(ours_rate, 1),
            "median_chunk_items_per_s": round(statistics.median(chunk_rates), 1),
            "seconds": round(sum(ours_ns) / 1e9, 3),
        },
        "raw": {
            "items_per_s": round(raw_rate, 1),
            "median_chunk_items_per_s": round(statistics.median(raw_chunk_rates), 1),
            "seconds": round(sum(raw_ns) / 1e9, 3),
        },
        "time_ratio_ours_raw": round(raw_rate / ours_rate, 3),
        "rate_ratio_ours_raw": round(ours_rate / raw_rate, 3),
    }


@dataclass
class Built:
    runtime: Runtime
    clock: StepClock
    workspace_id: str
    owner_id: str
    users: list[str]
    path: Path
    create: dict[str, Any]
    dataset: dict[str, Any]
    fts_words: dict[str, str]


def build(root: Path, sizes: Sizes) -> Built:
    config = root / "workbench.toml"
    config.write_text("")  # so a workbench.toml in the current directory is not picked up
    settings = load_settings(config, environ={}, data_dir=str(root / "data"))
    n = sizes.items
    clock = StepClock(CREATED_FROM, SPAN / (n * 2))  # two clock readings per create
    runtime = Runtime(settings, clock=clock, pm=get_plugin_manager(None, load_entry_points=False))
    runtime.initialize()
    with cheap_password_hashing():
        owner = create_user(runtime, "owner@bench.test", "correct horse battery")
        workspace = create_workspace(runtime, "Bench", owner_id=owner.id)
        raw_workspace = create_workspace(runtime, "Bench raw", owner_id=owner.id)
        users = []
        for i in range(ASSIGNEES):
            user = create_user(runtime, f"user{i:02d}@bench.test", "correct horse battery")
            add_member(runtime, workspace.id, user.email, "member")
            add_member(runtime, raw_workspace.id, user.email, "member")
            users.append(user.id)
    log(f"generating {n} items (seed {SEED})")
    rng = random.Random(SEED)
    words = Words(rng)
    data = generate(n, rng, words, users)
    records = data.records

    items = Items(runtime, workspace.id, None)
    raw_path = runtime.storage.workspace_path(raw_workspace.id)
    runtime.storage.forget_workspace(raw_workspace.id)  # only the bare connection holds it
    raw_conn = open_raw(raw_path)
    raw = RawWriter(raw_conn, raw_workspace.id, StepClock(CREATED_FROM, SPAN / n))

    def ours_single(chunk: Sequence[dict[str, Any]]) -> None:
        for record in chunk:
            items.create(ItemCreate(**record))

    def ours_import(chunk: Sequence[dict[str, Any]]) -> None:
        _accepted, rejected = items.import_rows(list(enumerate(chunk, start=1)))
        if rejected:
            raise RuntimeError(f"import rejected rows: {rejected[:3]}")

    single = min(sizes.single_creates, n)
    log(f"create: {single} items one transaction each, ours and raw alternating")
    single_chunks = [
        records[i : min(i + sizes.create_chunk, single)]
        for i in range(0, single, sizes.create_chunk)
    ]
    create: dict[str, Any] = {
        "single": {
            "transactions": "one per item (Items.create / BEGIN IMMEDIATE..COMMIT raw)",
            **create_side_by_side("single", single_chunks, ours_single, raw.one_per_transaction),
        }
    }
    log(f"create: {n - single} items through import_rows in batches of {sizes.import_batch}")
    batches = [records[i : i + sizes.import_batch] for i in range(single, n, sizes.import_batch)]
    if batches:
        create["bulk"] = {
            "transactions": f"one per batch of {sizes.import_batch} (Items.import_rows)",
            "batch_size": sizes.import_batch,
            **create_side_by_side("bulk", batches, ours_import, raw.batch),
        }
    raw_conn.close()
    clock.freeze()
    create["transitions"] = set_statuses(runtime, items, data, sizes)

    path = runtime.storage.workspace_path(workspace.id)
    checkpoint = open_raw(path)
    checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    checkpoint.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{raw_path}{suffix}").unlink(missing_ok=True)
    dataset, fts_words = describe(path, data, words)
    return Built(
        runtime=runtime,
        clock=clock,
        workspace_id=workspace.id,
        owner_id=owner.id,
        users=users,
        path=path,
        create=create,
        dataset=dataset,
        fts_words=fts_words,
    )


def set_statuses(runtime: Runtime, items: Items, data: Dataset, sizes: Sizes) -> dict[str, Any]:
    """A sample through ``Items.transition`` (timed), the rest with SQL (not timed)."""
    db = items.db
    with db.read() as conn:
        by_seq = list(conn.execute("SELECT seq, id, created_at FROM items ORDER BY seq"))
    paths = {
        "open": [],
        "in_progress": ["in_progress"],
        "done": ["in_progress", "done"],
        "archived": ["archived"],
    }
    step = max(1, len(by_seq) // max(1, sizes.transitions))
    sampled = set(range(0, len(by_seq), step)[: sizes.transitions])
    moves = 0
    ns = 0
    for index in sorted(sampled):
        _seq, item_id, _created = by_seq[index]
        version = 1
        for to in paths[data.statuses[index]]:
            start = time.perf_counter_ns()
            version = items.transition(item_id, to, expected_version=version).version
            ns += time.perf_counter_ns() - start
            moves += 1
    end = CREATED_FROM + SPAN
    updates = []
    for index, (seq, _item_id, created) in enumerate(by_seq):
        after = data.updated_after[index]
        if index in sampled or after is None:
            continue
        created_at = datetime.strptime(created, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        updated = isoformat(min(created_at + after, end))
        updates.append((data.statuses[index], updated, seq))
    log(f"statuses: {moves} transitions through the service, {len(updates)} rows by SQL")
    with db.write() as conn:
        conn.executemany(
            "UPDATE items SET status = ?, updated_at = ?, version = version + 1 WHERE seq = ?",
            updates,
        )
    return {
        "how": (
            f"{len(sampled)} items moved through Items.transition (timed here); every other "
            "item's status and updated_at written by one SQL UPDATE each, in one transaction"
        ),
        "transitions": moves,
        "transitions_per_s": round(moves / (ns / 1e9), 1) if ns else None,
    }


def describe(path: Path, data: Dataset, words: Words) -> tuple[dict[str, Any], dict[str, str]]:
    """What the data looks like, and the words the FTS cases search for."""
    conn = open_raw(path)
    try:

        def q(sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
            return list(conn.execute(sql, params))

        n = q("SELECT count(*) FROM items")[0][0]
        labels = q("SELECT label, count(*) FROM item_labels GROUP BY label ORDER BY 2 DESC")
        doc_freq: Counter[str] = Counter()
        for record in data.records:
            doc_freq.update(
                set((record["title"] + " " + record["body"]).lower().replace(".", "").split())
            )

        def near(share: float) -> str:
            target = max(3, round(n * share))
            return min(words.ranked, key=lambda w: (abs(doc_freq[w] - target), w))

        prefixes: Counter[str] = Counter(w[:3] for w in words.ranked)
        fts = {
            "common": words.ranked[0],  # the most frequent word: the worst case
            "medium": near(0.10),
            "rare": near(0.001),
            "prefix": max(sorted(prefixes), key=lambda p: prefixes[p]),
        }
        size_mb = (path.stat().st_size) / 1e6
        dataset = {
            "items": n,
            "statuses": dict(q("SELECT status, count(*) FROM items GROUP BY 1 ORDER BY 1")),
            "priorities": dict(q("SELECT priority, count(*) FROM items GROUP BY 1 ORDER BY 1")),
            "assignees": q("SELECT count(DISTINCT assignee) FROM items")[0][0],
            "unassigned": q("SELECT count(*) FROM items WHERE assignee IS NULL")[0][0],
            "labels": len(labels),
            "labels_per_item": round(sum(c for _, c in labels) / n, 2),
            "common_label": {"label": labels[0][0], "items": labels[0][1]},
            "rare_label": {"label": labels[-1][0], "items": labels[-1][1]},
            "with_due_date": q("SELECT count(*) FROM items WHERE due_at IS NOT NULL")[0][0],
            "created_at": q("SELECT min(created_at), max(created_at) FROM items")[0],
            "edited_after_create": q("SELECT count(*) FROM items WHERE updated_at > created_at")[0][
                0
            ],
            "fts_words": {
                k: {"word": v, "items_containing_word": doc_freq[v]}
                for k, v in fts.items()
                if k != "prefix"
            },
            "vocabulary": len(words.ranked),
            "file_mb": round(size_mb, 1),
            "seed": SEED,
        }
    finally:
        conn.close()
    return dataset, fts


# -- 2. and 3. listing and searching ---------------------------------------------------------


def list_filters(built: Built) -> list[tuple[str, dict[str, Any]]]:
    """Every supported filter, with values picked from the generated data."""
    ds = built.dataset
    words = built.fts_words
    return [
        ("none", {}),
        ("include_archived", {"include_archived": True}),
        *[(f"status={s}", {"status": [s]}) for s in STATUS_WEIGHTS],
        ("assignee", {"assignee": built.users[len(built.users) // 2]}),
        ("label_common", {"label": ds["common_label"]["label"]}),
        ("label_rare", {"label": ds["rare_label"]["label"]}),
        ("priority=high", {"priority": ["high"]}),
        ("due_week", {"due_after": NARROW_DUE[0], "due_before": NARROW_DUE[1]}),
        ("due_quarter", {"due_after": WIDE_DUE[0], "due_before": WIDE_DUE[1]}),
        ("q_common", {"q": words["common"]}),
        ("q_rare", {"q": words["rare"]}),
    ]


def same_sql(items: Items, query: ItemQuery, cursor: str | None) -> tuple[str, list[Any]]:
    """The SQL text and parameters ``Items.list_items`` runs for this query and cursor (built by the
    service's own helpers, so the raw side runs exactly the same statement)."""
    return items.statement(query, cursor=cursor, limit=PAGE)


def match_count(conn: apsw.Connection, items: Items, query: ItemQuery) -> int:
    sql, params = same_sql(items, query, None)
    params[-1] = -1  # no LIMIT
    count = conn.execute(f"SELECT count(*) FROM ({sql})", params).fetchall()[0][0]
    assert isinstance(count, int)
    return count


def query_plan(conn: apsw.Connection, sql: str, params: Sequence[Any]) -> str:
    return " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))


def compare(
    items: Items,
    conn: apsw.Connection,
    query: ItemQuery,
    cursor: str | None,
    sizes: Sizes,
    reps: int,
) -> dict[str, Any]:
    """One case: ``Items.list_items`` beside the same SQL on a bare connection, fetching tuples."""
    sql, params = same_sql(items, query, cursor)
    page = items.list_items(query, cursor=cursor, limit=PAGE)
    rows = conn.execute(sql, params).fetchall()
    if [row[1] for row in rows[:PAGE]] != [item.id for item in page.items]:
        raise AssertionError(f"raw SQL and Items.list_items disagree for {query} at {cursor}")

    def ours() -> object:
        return items.list_items(query, cursor=cursor, limit=PAGE)

    def raw() -> object:
        return conn.execute(sql, params).fetchall()

    ours_ns, raw_ns = paired(ours, raw, sizes, reps)
    ours_lat, raw_lat = latency(ours_ns), latency(raw_ns)
    result: dict[str, Any] = {
        "rows": len(page.items),
        "ours": ours_lat,
        "raw": raw_lat,
        "ratio_p50": round(ours_lat["p50_ms"] / raw_lat["p50_ms"], 3),
        "ratio_p99": round(ours_lat["p99_ms"] / raw_lat["p99_ms"], 3),
        "plan": query_plan(conn, sql, params),
    }
    reasons = []
    if ours_lat["p99_ms"] > P99_TARGET_MS:
        where = "in SQLite too" if raw_lat["p99_ms"] > P99_TARGET_MS else "ours only"
        reasons.append(f"p99 {ours_lat['p99_ms']} ms > {P99_TARGET_MS:g} ms ({where})")
    if result["ratio_p50"] > RATIO_TARGET:
        reasons.append(f"ours/raw p50 {result['ratio_p50']} > {RATIO_TARGET}")
    result["meets_target"] = not reasons
    result["reasons"] = reasons
    return result


def deep_cursor(items: Items, query: ItemQuery, pages: int) -> tuple[str | None, int]:
    """The cursor of page ``pages + 1`` (or of the last page, if there are fewer)."""
    cursor: str | None = None
    depth = 0
    for _ in range(pages):
        page = items.list_items(query, cursor=cursor, limit=PAGE)
        if page.next_cursor is None:
            break
        cursor, depth = page.next_cursor, depth + 1
    return cursor, depth + 1


def bench_lists(built: Built, items: Items, conn: apsw.Connection, sizes: Sizes) -> dict[str, Any]:
    cases: list[dict[str, Any]] = []
    started = time.perf_counter()
    for name, spec in list_filters(built):
        matches = match_count(conn, items, ItemQuery(**spec))
        log(f"list: {name} ({matches} matching items)")
        for sort, direction in itertools.product(SORTS, DIRECTIONS):
            query = ItemQuery(**spec, sort=sort, direction=direction)
            cursor, page_number = deep_cursor(items, query, sizes.deep_pages)
            for page_kind, at in (("first", None), ("deep", cursor)):
                if page_kind == "deep" and at is None:
                    continue  # a single page: there is no deep page
                case = {
                    "case": f"{name}/{sort}/{direction}/{page_kind}",
                    "filter": name,
                    "sort": sort,
                    "direction": direction,
                    "page": 1 if at is None else page_number,
                    "matches": matches,
                    **compare(items, conn, query, at, sizes, sizes.reps),
                }
                cases.append(case)
    worst_p99 = max(cases, key=lambda c: c["ours"]["p99_ms"])
    worst_ratio = max(cases, key=lambda c: c["ratio_p50"])
    return {
        "page_size": PAGE,
        "deep_page_target": sizes.deep_pages + 1,
        "reps_per_case": sizes.reps,
        "min_reps_when_over_budget": sizes.min_reps,
        "budget_s_per_side": sizes.budget_s,
        "cases_measured": len(cases),
        "seconds": round(time.perf_counter() - started, 1),
        "summary": {
            "cases_meeting_target": sum(c["meets_target"] for c in cases),
            "p99_over_target": sum(c["ours"]["p99_ms"] > P99_TARGET_MS for c in cases),
            "ratio_over_target": sum(c["ratio_p50"] > RATIO_TARGET for c in cases),
            "median_ours_p50_ms": round(statistics.median(c["ours"]["p50_ms"] for c in cases), 3),
            "median_ours_p99_ms": round(statistics.median(c["ours"]["p99_ms"] for c in cases), 3),
            "median_ratio_p50": round(statistics.median(c["ratio_p50"] for c in cases), 3),
            "worst_p99": {"case": worst_p99["case"], "ms": worst_p99["ours"]["p99_ms"]},
            "worst_ratio_p50": {"case": worst_ratio["case"], "ratio": worst_ratio["ratio_p50"]},
        },
        "cases": cases,
    }


def bench_fts(built: Built, items: Items, conn: apsw.Connection, sizes: Sizes) -> dict[str, Any]:
    words = built.fts_words
    searches = {
        "one_word_common": words["common"],
        "one_word_rare": words["rare"],
        "one_word_medium": words["medium"],
        "two_words": f"{words['common']} {words['medium']}",
        "prefix": words["prefix"],
    }
    cases = []
    for name, text in searches.items():
        query = ItemQuery(q=text)
        matches = match_count(conn, items, query)
        log(f"fts: {name} q={text!r} ({matches} matching items)")
        cases.append(
            {
                "case": f"fts/{name}",
                "q": text,
                "fts_expression": items_service._fts_expression(text),
                "sort": "created",
                "direction": "desc",
                "matches": matches,
                **compare(items, conn, query, None, sizes, sizes.fts_reps),
            }
        )
    return {"note": "default sort (created desc), first page of 50", "cases": cases}


# -- 4. through HTTP -------------------------------------------------------------------------


def bench_http(built: Built, items: Items, sizes: Sizes) -> dict[str, Any]:
    from litestar.testing import TestClient

    from workbench.app import create_app

    runtime = built.runtime
    token = issue_token(
        runtime, user_id=built.owner_id, workspace_id=built.workspace_id, name="bench"
    ).token
    headers = {"Authorization": f"Bearer {token}"}
    url = f"/api/v1/workspaces/{built.workspace_id}/items"
    label = built.dataset["common_label"]["label"]
    assignee = built.users[len(built.users) // 2]
    cases: list[tuple[str, dict[str, str], ItemQuery]] = [
        ("default", {}, ItemQuery()),
        (
            "label_sort_updated",
            {"label": label, "sort": "updated"},
            ItemQuery(label=label, sort="updated"),
        ),
        ("status_open", {"status": "open"}, ItemQuery(status=["open"])),
        (
            "assignee_due_asc",
            {"assignee": assignee, "sort": "due", "direction": "asc"},
            ItemQuery(assignee=assignee, sort="due", direction="asc"),
        ),
        ("q_common", {"q": built.fts_words["common"]}, ItemQuery(q=built.fts_words["common"])),
    ]
    out = []
    with TestClient(create_app(runtime)) as client:
        for name, params, query in cases:
            log(f"http: {name}")
            expected = [i.id for i in items.list_items(query, limit=PAGE).items]
            response = client.get(url, params=params, headers=headers)
            if (
                response.status_code != 200
                or [i["id"] for i in response.json()["items"]] != expected
            ):
                raise AssertionError(f"HTTP {name}: {response.status_code} {response.text[:300]}")

            def http(params: dict[str, str] = params) -> object:
                return client.get(url, params=params, headers=headers).content

            def service(query: ItemQuery = query) -> object:
                return items.list_items(query, limit=PAGE)

            http_ns, service_ns = paired(http, service, sizes, sizes.http_reps)
            http_lat, service_lat = latency(http_ns), latency(service_ns)
            out.append(
                {
                    "case": f"http/{name}",
                    "params": params,
                    "http": http_lat,
                    "service": service_lat,
                    "http_overhead_p50_ms": round(http_lat["p50_ms"] - service_lat["p50_ms"], 3),
                    "ratio_http_service_p50": round(http_lat["p50_ms"] / service_lat["p50_ms"], 3),
                }
            )
    return {
        "client": "litestar.testing.TestClient (in-process ASGI, bearer token)",
        "endpoint": "GET /api/v1/workspaces/{workspace_id}/items",
        "cases": out,
    }


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, help="items in the workspace (default 100000)")
    parser.add_argument("--quick", action="store_true", help="5000 items, few repetitions")
    parser.add_argument("--out", type=Path, help="also write the JSON result to this file")
    parser.add_argument(
        "--tmpdir", type=Path, help="where to make the scratch directory (must be on disk)"
    )
    parser.add_argument("--keep", type=Path, help="build in this new directory and keep it")
    return parser.parse_args(argv)


@contextmanager
def work_dir(args: argparse.Namespace) -> Iterator[Path]:
    if args.keep is None:
        with scratch_dir("workbench-items-", args.tmpdir) as root:
            yield root
    else:
        args.keep.mkdir(parents=True, exist_ok=False)
        yield args.keep


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.items is not None:
        if args.items < 2 * PAGE:
            raise SystemExit("--items must be at least 100")
        sizes = replace(
            sizes, items=args.items, single_creates=min(sizes.single_creates, args.items)
        )
    started = time.perf_counter()
    started_at = utc_now()
    load_before = load_average()
    with work_dir(args) as root:
        built = build(root, sizes)
        try:
            gc.collect()
            gc.freeze()  # the setup's objects stay out of the collector's way while timing
            items = Items(built.runtime, built.workspace_id, None)
            conn = open_raw(built.path)
            try:
                lists = bench_lists(built, items, conn, sizes)
                fts = bench_fts(built, items, conn, sizes)
            finally:
                conn.close()
            http = bench_http(built, items, sizes)
            machine = machine_info(root)
            machine["load_average_1_5_15"] = {"start": load_before, "end": load_average()}
            settings = built.runtime.settings
            machine["workbench"] = {
                "synchronous": settings.synchronous,
                "reader_pool_size": settings.reader_pool_size,
                "dispatch_on_commit": getattr(built.runtime, "dispatch_on_commit", None),
                "queue": settings.queue_url or "sqlite (data/jobs.db)",
            }
        finally:
            built.runtime.close()
        if args.keep is not None:
            log(f"kept: {built.path}")
    misses = [
        {
            "case": c["case"],
            "reasons": c["reasons"],
            "ours_p99_ms": c["ours"]["p99_ms"],
            "raw_p99_ms": c["raw"]["p99_ms"],
            "ratio_p50": c["ratio_p50"],
            "matches": c["matches"],
        }
        for c in lists["cases"] + fts["cases"]
        if not c["meets_target"]
    ]
    command = ".venv/bin/python benchmarks/items.py" + (
        " " + shlex.join(sys.argv[1:] if argv is None else argv)
        if (sys.argv[1:] if argv is None else argv)
        else ""
    )
    result: dict[str, Any] = {
        "benchmark": "items",
        "command": command,
        "started_at": started_at,
        "quick": args.quick,
        "items": sizes.items,
        "targets": {
            "list_p99_ms": P99_TARGET_MS,
            "ours_over_raw": RATIO_TARGET,
            "ratio_basis": "p50 latency, ours / raw apsw on the same SQL",
        },
        "meets_target": not misses,
        "misses_count": len(misses),
        "misses": misses,
        "dataset": built.dataset,
        "create": built.create,
        "list": lists,
        "fts": fts,
        "http": http,
        "machine": machine,
        "seconds": round(time.perf_counter() - started, 1),
    }
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
