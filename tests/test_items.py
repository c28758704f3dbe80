"""Work items through the real HTTP API: lifecycle, versions, idempotency, timeline, queries,
views, custom fields, bulk import and bad input."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.conftest import Team
from workbench.db.connection import rows
from workbench.items.models import STATUSES, TRANSITIONS

PROBLEM = "application/problem+json"


def create(client: TestClient[Any], team: Team, role: str = "owner", **body: Any) -> dict[str, Any]:
    body.setdefault("title", "An item")
    response = client.post(team.url("/items"), json=body, headers=team.auth(role))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def move(client: TestClient[Any], team: Team, item: dict[str, Any], to: str) -> Any:
    return client.post(
        team.url(f"/items/{item['id']}/transitions"),
        json={"to": to},
        headers={**team.auth(), "If-Match": f'"{item["version"]}"'},
    )


def reach(client: TestClient[Any], team: Team, status: str) -> dict[str, Any]:
    """A fresh item moved to ``status`` along allowed transitions."""
    item = create(client, team)
    path = {
        "open": [],
        "in_progress": ["in_progress"],
        "done": ["in_progress", "done"],
        "archived": ["archived"],
    }[status]
    for step in path:
        response = move(client, team, item, step)
        assert response.status_code == 200, response.text
        item = response.json()
    return item


# -- lifecycle ------------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "to"), list(itertools.product(STATUSES, STATUSES)))
def test_every_transition(client: TestClient[Any], team: Team, start: str, to: str) -> None:
    item = reach(client, team, start)
    response = move(client, team, item, to)
    if to in TRANSITIONS[start]:
        assert response.status_code == 200, response.text
        assert response.json()["status"] == to
        assert response.json()["version"] == item["version"] + 1
    else:
        assert response.status_code == 409
        assert response.headers["content-type"].startswith(PROBLEM)
        problem = response.json()
        assert problem["allowed"] == list(TRANSITIONS[start])
        assert ", ".join(TRANSITIONS[start]) in problem["detail"]
        assert (
            client.get(team.url(f"/items/{item['id']}"), headers=team.auth()).json()["status"]
            == start
        )


def test_archived_items_are_hidden_unless_asked_for(client: TestClient[Any], team: Team) -> None:
    kept = create(client, team, title="kept")
    gone = reach(client, team, "archived")
    listed = client.get(team.url("/items"), headers=team.auth()).json()["items"]
    assert [i["id"] for i in listed] == [kept["id"]]
    everything = client.get(
        team.url("/items"), params={"include_archived": True}, headers=team.auth()
    ).json()["items"]
    assert {i["id"] for i in everything} == {kept["id"], gone["id"]}
    only = client.get(
        team.url("/items"), params={"status": "archived"}, headers=team.auth()
    ).json()["items"]
    assert [i["id"] for i in only] == [gone["id"]]


# -- versions -----------------------------------------------------------------------------


def test_patch_needs_the_current_version(client: TestClient[Any], team: Team) -> None:
    item = create(client, team, title="v1")
    url = team.url(f"/items/{item['id']}")
    missing = client.patch(url, json={"title": "x"}, headers=team.auth())
    assert missing.status_code == 428
    assert missing.json()["current_version"] == 1
    ok = client.patch(url, json={"title": "v2"}, headers={**team.auth(), "If-Match": '"1"'})
    assert ok.status_code == 200
    assert ok.headers["etag"] == '"2"'
    stale = client.patch(url, json={"title": "v3"}, headers={**team.auth(), "If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.headers["content-type"].startswith(PROBLEM)
    assert stale.json()["current_version"] == 2
    assert stale.json()["current"]["title"] == "v2"
    by_body = client.patch(url, json={"title": "v3", "version": 2}, headers=team.auth())
    assert by_body.status_code == 200 and by_body.json()["version"] == 3
    stale_body = client.patch(url, json={"title": "v4", "version": 2}, headers=team.auth())
    assert stale_body.status_code == 412
    weak = client.patch(url, json={"body": "b"}, headers={**team.auth(), "If-Match": 'W/"3"'})
    assert weak.status_code == 200
    garbage = client.patch(url, json={"body": "c"}, headers={**team.auth(), "If-Match": "abc"})
    assert garbage.status_code == 400
    final = client.get(url, headers=team.auth())
    assert (final.json()["title"], final.headers["etag"]) == ("v3", '"4"')


def test_a_no_op_patch_keeps_the_version(client: TestClient[Any], team: Team) -> None:
    item = create(client, team, title="same")
    response = client.patch(
        team.url(f"/items/{item['id']}"),
        json={"title": "same"},
        headers={**team.auth(), "If-Match": '"1"'},
    )
    assert response.json()["version"] == 1


def test_transition_with_a_stale_version(client: TestClient[Any], team: Team) -> None:
    item = create(client, team)
    client.patch(
        team.url(f"/items/{item['id']}"),
        json={"title": "changed"},
        headers={**team.auth(), "If-Match": '"1"'},
    )
    response = move(client, team, item, "in_progress")
    assert response.status_code == 412
    assert response.json()["current_version"] == 2


# -- idempotency --------------------------------------------------------------------------


def test_idempotent_create_replays_and_refuses_a_different_body(
    client: TestClient[Any], team: Team, runtime: Any
) -> None:
    headers = {**team.auth(), "Idempotency-Key": "create-1"}
    first = client.post(team.url("/items"), json={"title": "once"}, headers=headers)
    again = client.post(team.url("/items"), json={"title": "once"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    different = client.post(team.url("/items"), json={"title": "twice"}, headers=headers)
    assert different.status_code == 422
    assert different.headers["content-type"].startswith(PROBLEM)
    listed = client.get(team.url("/items"), headers=team.auth()).json()["items"]
    assert [i["title"] for i in listed] == ["once"]
    runtime.clock.advance(hours=25)  # keys are kept 24 hours
    later = client.post(team.url("/items"), json={"title": "twice"}, headers=headers)
    assert later.status_code == 201 and later.json()["id"] != first.json()["id"]


def test_idempotency_keys_are_per_caller(client: TestClient[Any], team: Team) -> None:
    mine = client.post(
        team.url("/items"),
        json={"title": "a"},
        headers={**team.auth("owner"), "Idempotency-Key": "k"},
    )
    theirs = client.post(
        team.url("/items"),
        json={"title": "a"},
        headers={**team.auth("member"), "Idempotency-Key": "k"},
    )
    assert mine.json()["id"] != theirs.json()["id"]


# -- timeline and comments ----------------------------------------------------------------


def test_timeline_records_every_change_with_actor_and_correlation_id(
    client: TestClient[Any], team: Team, runtime: Any
) -> None:
    def headers(n: int, version: int | None = None) -> dict[str, str]:
        extra = {"If-Match": f'"{version}"'} if version else {}
        return {**team.auth("member"), "X-Request-ID": f"req-{n}", **extra}

    item = client.post(
        team.url("/items"), json={"title": "a", "priority": "low"}, headers=headers(1)
    ).json()
    url = team.url(f"/items/{item['id']}")
    client.patch(
        url, json={"title": "b", "priority": "high", "labels": ["x"]}, headers=headers(2, 1)
    )
    client.post(url + "/transitions", json={"to": "in_progress"}, headers=headers(3, 2))
    client.post(url + "/comments", json={"body": "looks good"}, headers=headers(4))
    client.post(url + "/transitions", json={"to": "archived"}, headers=headers(5, 3))
    timeline = client.get(url + "/timeline", headers=team.auth()).json()
    assert [e["kind"] for e in timeline] == [
        "created",
        "edited",
        "transitioned",
        "commented",
        "archived",
    ]
    assert [e["correlation_id"] for e in timeline] == [f"req-{n}" for n in range(1, 6)]
    assert {e["actor"] for e in timeline} == {team.users["member"].id}
    assert timeline[1]["data"]["changes"] == {
        "title": {"from": "a", "to": "b"},
        "priority": {"from": "low", "to": "high"},
        "labels": {"from": [], "to": ["x"]},
    }
    with runtime.storage.workspace(team.id).read() as conn:
        events = list(
            rows(
                conn,
                "SELECT event_id, event_type, correlation_id, actor"
                " FROM outbox WHERE event_type LIKE 'item.%' ORDER BY seq",
            )
        )
    assert [e["event_type"] for e in events] == [
        "item.created",
        "item.updated",
        "item.transitioned",
        "item.commented",
        "item.transitioned",
    ]
    assert [e["event_id"] for e in events] == [e["event_id"] for e in timeline]
    comments = client.get(url + "/comments", headers=team.auth("viewer")).json()
    assert [(c["body"], c["author"]) for c in comments] == [("looks good", team.users["member"].id)]


# -- queries ------------------------------------------------------------------------------


def test_filters(client: TestClient[Any], team: Team) -> None:
    member = team.users["member"].id
    a = create(
        client,
        team,
        title="Quarterly report draft",
        labels=["finance"],
        priority="high",
        assignee=member,
        due_at="2026-03-01",
    )
    b = create(
        client,
        team,
        title="Fix login bug",
        body="the reporting page crashes",
        labels=["bug", "web"],
        priority="urgent",
        due_at="2026-01-15",
    )
    c = create(client, team, title="Plan offsite", priority="low")
    move(client, team, c, "in_progress")

    def ids(**params: Any) -> list[str]:
        response = client.get(team.url("/items"), params=params, headers=team.auth())
        assert response.status_code == 200, response.text
        return sorted(i["id"] for i in response.json()["items"])

    assert ids(status="in_progress") == [c["id"]]
    assert ids(status=["open", "in_progress"]) == sorted([a["id"], b["id"], c["id"]])
    assert ids(assignee=member) == [a["id"]]
    assert ids(label="bug") == [b["id"]]
    assert ids(priority="urgent") == [b["id"]]
    assert ids(due_after="2026-02-01") == [a["id"]]
    assert ids(due_after="2026-01-01", due_before="2026-02-01") == [b["id"]]
    assert ids(q="report") == sorted([a["id"], b["id"]])  # stemmed, title and body
    assert ids(q="offsite plan") == [c["id"]]
    assert ids(q="repo") == sorted([a["id"], b["id"]])  # the last word is a prefix


def test_sorts(client: TestClient[Any], team: Team, runtime: Any) -> None:
    made = []
    for n, (priority, due) in enumerate(
        [("low", "2026-05-01"), ("urgent", None), ("medium", "2026-02-01")]
    ):
        runtime.clock.advance(minutes=1)
        made.append(create(client, team, title=f"i{n}", priority=priority, due_at=due))
    runtime.clock.advance(minutes=1)
    client.patch(
        team.url(f"/items/{made[0]['id']}"),
        json={"body": "touched"},
        headers={**team.auth(), "If-Match": '"1"'},
    )

    def titles(sort: str, direction: str) -> list[str]:
        params = {"sort": sort, "direction": direction}
        return [
            i["title"]
            for i in client.get(team.url("/items"), params=params, headers=team.auth()).json()[
                "items"
            ]
        ]

    assert titles("created", "asc") == ["i0", "i1", "i2"]
    assert titles("created", "desc") == ["i2", "i1", "i0"]
    assert titles("updated", "desc") == ["i0", "i2", "i1"]
    assert titles("priority", "desc") == ["i1", "i2", "i0"]
    assert titles("due", "asc") == ["i2", "i0", "i1"]  # no due date sorts last


@pytest.mark.parametrize(
    ("sort", "direction"),
    [("created", "desc"), ("created", "asc"), ("priority", "desc"), ("due", "asc")],
)
def test_pagination_neither_skips_nor_repeats_while_items_arrive(
    client: TestClient[Any], team: Team, sort: str, direction: str
) -> None:
    priorities = ["none", "low", "medium", "high", "urgent"]
    originals = {
        create(
            client,
            team,
            title=f"item {n}",
            priority=priorities[n % 5],
            due_at=f"2026-02-{n % 28 + 1:02d}" if n % 4 else None,
        )["id"]
        for n in range(23)
    }
    seen: list[str] = []
    cursor = None
    arrived: set[str] = set()
    while True:
        params: dict[str, Any] = {"limit": 5, "sort": sort, "direction": direction}
        if cursor:
            params["cursor"] = cursor
        page = client.get(team.url("/items"), params=params, headers=team.auth()).json()
        seen += [i["id"] for i in page["items"]]
        arrived.add(create(client, team, title="newcomer", priority="medium")["id"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)), "an item was repeated"
    assert originals <= set(seen), "an item was skipped"
    assert set(seen) - originals <= arrived


def test_bad_cursors(client: TestClient[Any], team: Team) -> None:
    for n in range(3):
        create(client, team, title=f"t{n}")
    page = client.get(team.url("/items"), params={"limit": 1}, headers=team.auth()).json()
    other = client.get(
        team.url("/items"),
        params={"limit": 1, "sort": "updated", "cursor": page["next_cursor"]},
        headers=team.auth(),
    )
    assert other.status_code == 400
    assert "different filter" in other.json()["detail"]
    junk = client.get(team.url("/items"), params={"cursor": "!!!"}, headers=team.auth())
    assert junk.status_code == 400


# -- saved views --------------------------------------------------------------------------


def test_saved_view_round_trip(client: TestClient[Any], team: Team) -> None:
    create(client, team, title="bug one", labels=["bug"])
    create(client, team, title="feature", labels=["feature"])
    query = {"label": "bug", "sort": "updated", "direction": "asc"}
    made = client.post(
        team.url("/views"), json={"name": "Bugs", "query": query}, headers=team.auth("member")
    )
    assert made.status_code == 201, made.text
    view = made.json()
    assert view["query"]["label"] == "bug" and view["shared"] is False
    fetched = client.get(team.url(f"/views/{view['id']}"), headers=team.auth("member")).json()
    assert fetched == view
    listed = client.get(
        team.url("/items"), params={"view": view["id"]}, headers=team.auth("member")
    ).json()["items"]
    assert [i["title"] for i in listed] == ["bug one"]
    # personal: invisible to others
    assert (
        client.get(team.url(f"/views/{view['id']}"), headers=team.auth("admin")).status_code == 404
    )
    assert client.get(team.url("/views"), headers=team.auth("admin")).json() == []
    # sharing needs views.share
    refused = client.patch(
        team.url(f"/views/{view['id']}"), json={"shared": True}, headers=team.auth("member")
    )
    assert refused.status_code == 403
    shared = client.post(
        team.url("/views"),
        json={"name": "Team bugs", "query": query, "shared": True},
        headers=team.auth("admin"),
    )
    assert shared.status_code == 201
    visible = client.get(team.url("/views"), headers=team.auth("viewer")).json()
    assert [v["name"] for v in visible] == ["Team bugs"]
    renamed = client.patch(
        team.url(f"/views/{view['id']}"), json={"name": "My bugs"}, headers=team.auth("member")
    )
    assert renamed.json()["name"] == "My bugs"
    assert (
        client.delete(team.url(f"/views/{view['id']}"), headers=team.auth("member")).status_code
        == 204
    )
    assert (
        client.get(team.url(f"/views/{view['id']}"), headers=team.auth("member")).status_code == 404
    )


# -- custom fields and bad input ----------------------------------------------------------


def test_custom_fields_are_validated_against_the_schema(
    client: TestClient[Any], team: Team
) -> None:
    schema = {
        "fields": [
            {"name": "estimate", "type": "number", "required": True},
            {"name": "stage", "type": "select", "options": ["alpha", "beta"]},
            {"name": "billable", "type": "boolean"},
        ]
    }
    assert (
        client.put(team.url("/item-fields"), json=schema, headers=team.auth("member")).status_code
        == 403
    )
    assert client.put(team.url("/item-fields"), json=schema, headers=team.auth()).status_code == 200
    ok = create(client, team, fields={"estimate": 3, "stage": "beta", "billable": True})
    assert ok["fields"] == {"estimate": 3, "stage": "beta", "billable": True}
    for fields, message in [
        ({"estimate": 1, "colour": "red"}, "unknown custom field 'colour'"),
        ({"estimate": "three"}, "custom field 'estimate' expects number"),
        ({"estimate": 1, "stage": "gamma"}, "one of alpha, beta"),
        ({"stage": "alpha"}, "required custom fields missing: estimate"),
    ]:
        response = client.post(
            team.url("/items"), json={"title": "x", "fields": fields}, headers=team.auth()
        )
        assert response.status_code == 422, fields
        assert message in response.json()["detail"]
    patched = client.patch(
        team.url(f"/items/{ok['id']}"),
        json={"fields": {"billable": False}},
        headers={**team.auth(), "If-Match": '"1"'},
    )
    assert patched.json()["fields"] == {"estimate": 3, "stage": "beta", "billable": False}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"title": "x", "colour": "red"}, "colour"),
        ({"title": 42}, "title"),
        ({"title": "x" * 301}, "title"),
        ({"title": "x", "labels": ["Bad Label!"]}, "labels"),
        ({"title": "x", "labels": ["ok"] * 21}, "labels"),
        ({"title": "x", "priority": "critical"}, "priority"),
        ({"title": "x", "due_at": "next tuesday"}, "due_at"),
        ({}, "title"),
    ],
)
def test_bad_input_is_a_problem(
    client: TestClient[Any], team: Team, body: Any, needle: str
) -> None:
    response = client.post(team.url("/items"), json=body, headers=team.auth())
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(PROBLEM)
    assert needle in response.text


def test_status_cannot_be_patched_and_assignee_must_be_a_member(
    client: TestClient[Any], team: Team
) -> None:
    item = create(client, team)
    url = team.url(f"/items/{item['id']}")
    response = client.patch(
        url, json={"status": "done"}, headers={**team.auth(), "If-Match": '"1"'}
    )
    assert response.status_code == 400
    stranger = client.post(
        team.url("/items"), json={"title": "x", "assignee": "usr_nobody"}, headers=team.auth()
    )
    assert stranger.status_code == 422
    assert "not a member" in stranger.json()["detail"]


def test_viewers_read_but_do_not_write(client: TestClient[Any], team: Team) -> None:
    item = create(client, team)
    assert (
        client.get(team.url(f"/items/{item['id']}"), headers=team.auth("viewer")).status_code == 200
    )
    assert (
        client.post(
            team.url("/items"), json={"title": "x"}, headers=team.auth("viewer")
        ).status_code
        == 403
    )


# -- bulk import --------------------------------------------------------------------------


def test_import_csv_reports_rejected_rows_and_keeps_the_rest(
    client: TestClient[Any], team: Team
) -> None:
    csv_text = (
        "title,priority,labels,due_at\n"
        "First,high,bug;web,2026-04-01\n"
        ",low,,\n"
        "Third,critical,,\n"
        "Fourth,,ops,\n"
    )
    response = client.post(
        team.url("/items/import"),
        content=csv_text.encode(),
        headers={**team.auth(), "Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["accepted"] == 2
    assert [r["line"] for r in report["rejected"]] == [3, 4]
    assert "title" in report["rejected"][0]["reason"]
    assert "priority" in report["rejected"][1]["reason"]
    listed = client.get(
        team.url("/items"), params={"sort": "created", "direction": "asc"}, headers=team.auth()
    ).json()["items"]
    assert [(i["title"], i["labels"]) for i in listed] == [
        ("First", ["bug", "web"]),
        ("Fourth", ["ops"]),
    ]


def test_import_json_lines(client: TestClient[Any], team: Team) -> None:
    lines = b'{"title": "a"}\nnot json\n[1, 2]\n{"title": "b", "labels": ["x"]}\n'
    response = client.post(
        team.url("/items/import"),
        content=lines,
        headers={**team.auth(), "Content-Type": "application/x-ndjson"},
    )
    report = response.json()
    assert report["accepted"] == 2
    assert [r["line"] for r in report["rejected"]] == [2, 3]
    unknown = client.post(
        team.url("/items/import"),
        content=b"x",
        headers={**team.auth(), "Content-Type": "application/pdf"},
    )
    assert unknown.status_code == 400


def test_cli_import(tmp_path: Any, team: Team, runtime: Any) -> None:
    from click.testing import CliRunner

    from workbench.cli import cli

    source = tmp_path / "backlog.jsonl"
    source.write_text('{"title": "from cli"}\n{"title": ""}\n')
    result = CliRunner().invoke(
        cli,
        [
            "--data-dir",
            str(runtime.settings.data_path),
            "items",
            "import",
            "--workspace",
            team.id,
            "--as-user",
            "member@team.test",
            str(source),
        ],
    )
    assert result.exit_code == 2, result.output
    assert result.stdout == "imported 1 items, rejected 1\n"
    assert result.stderr.startswith("line 2: rejected: Expected `str` of length >= 1")
    from workbench.items.models import ItemQuery
    from workbench.items.service import Items

    page = Items(runtime, team.id, None).list_items(ItemQuery())
    assert [(i.title, i.created_by) for i in page.items] == [("from cli", team.users["member"].id)]
    wrong = tmp_path / "backlog.txt"
    wrong.write_text("x")
    refused = CliRunner().invoke(
        cli,
        [
            "--data-dir",
            str(runtime.settings.data_path),
            "items",
            "import",
            "--workspace",
            team.id,
            str(wrong),
        ],
    )
    assert refused.exit_code == 1
    assert "use a .csv or .jsonl file" in refused.stderr


def test_csv_custom_fields_are_read_as_their_schema_types(
    client: TestClient[Any], team: Team
) -> None:
    schema = {
        "fields": [
            {"name": "ticket", "type": "text"},
            {"name": "points", "type": "number"},
            {"name": "billable", "type": "boolean"},
            {"name": "tier", "type": "select", "options": ["1", "2"]},
        ]
    }
    client.put(team.url("/item-fields"), json=schema, headers=team.auth())
    csv_text = (
        "title,fields.ticket,fields.points,fields.billable,fields.tier\n"
        "Typed,12345,3.5,true,2\n"
        "Bad,x,lots,true,2\n"
    )
    report = client.post(
        team.url("/items/import"),
        content=csv_text.encode(),
        headers={**team.auth(), "Content-Type": "text/csv"},
    ).json()
    assert report["accepted"] == 1
    assert [r["line"] for r in report["rejected"]] == [3]
    item = client.get(team.url(f"/items/{report['item_ids'][0]}"), headers=team.auth()).json()
    assert item["fields"] == {"ticket": "12345", "points": 3.5, "billable": True, "tier": "2"}
