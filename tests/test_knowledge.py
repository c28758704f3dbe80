"""The knowledge base through the real HTTP API: upload of every format, status, citations,
dedupe by hash, versions without stale chunks, bad files, filters, feedback, permissions and
tenant isolation."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

from tests.conftest import Team
from tests.test_knowledge_parsing import HTML, MARKDOWN, make_pdf
from workbench.runtime import Runtime

PROBLEM = "application/problem+json"


def upload(
    client: TestClient[Any],
    team: Team,
    content: bytes | str,
    content_type: str = "text/plain",
    role: str = "member",
    expect: int | None = 201,
    **params: Any,
) -> Any:
    body = content.encode() if isinstance(content, str) else content
    response = client.post(
        team.url("/documents"),
        content=body,
        params=params,
        headers={**team.auth(role), "Content-Type": content_type},
    )
    if expect is not None:
        assert response.status_code == expect, response.text
    return response


def search(
    client: TestClient[Any], team: Team, query: str, role: str = "viewer", **body: Any
) -> Any:
    response = client.post(
        team.url("/search"), json={"query": query, **body}, headers=team.auth(role)
    )
    assert response.status_code == 200, response.text
    return response.json()


def document(client: TestClient[Any], team: Team, document_id: str) -> Any:
    response = client.get(team.url(f"/documents/{document_id}"), headers=team.auth("viewer"))
    assert response.status_code == 200, response.text
    return response.json()


FORMATS = {
    "text/plain": (
        "Shock waves form ahead of a blunt body in supersonic flow.\n\nThey heat it.",
        "shock waves",
    ),
    "text/markdown": (MARKDOWN, "lift turning flow"),
    "text/html": (HTML, "flutter instability"),
    "application/pdf": (
        make_pdf(
            [["Hypersonic heating of re-entry capsules.", "Ablation protects them."]], "Capsules"
        ),
        "ablation capsules",
    ),
}


@pytest.mark.parametrize("media_type", sorted(FORMATS))
def test_each_format_is_ingested_and_cited(
    client: TestClient[Any], team: Team, media_type: str
) -> None:
    content, query = FORMATS[media_type]
    created = upload(client, team, content, media_type, tags="physics").json()
    assert created["status"] == "queued"  # the answer is given before the pipeline runs
    assert created["mime_type"] == media_type and created["version"] == 1
    indexed = document(client, team, created["id"])
    assert indexed["status"] == "indexed" and indexed["indexed_version"] == 1
    assert indexed["chunk_count"] >= 1 and indexed["tags"] == ["physics"]
    source = client.get(
        team.url(f"/documents/{created['id']}/text"), headers=team.auth("viewer")
    ).json()
    chunks = client.get(
        team.url(f"/documents/{created['id']}/chunks"), headers=team.auth("viewer")
    ).json()
    assert [c["ordinal"] for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert source["text"][chunk["char_start"] : chunk["char_end"]] == chunk["text"]
        assert chunk["embedding"]["embedder"] == "wordllama"
        assert chunk["embedding"]["model"] == "l2_supercat"
    for mode in ("keyword", "vector", "hybrid"):
        hits = search(client, team, query, mode=mode)["hits"]
        assert hits, mode
        hit = hits[0]
        assert hit["document_id"] == created["id"]
        assert source["text"][hit["char_start"] : hit["char_end"]] == hit["text"]


def test_a_hit_explains_itself(client: TestClient[Any], team: Team) -> None:
    upload(
        client,
        team,
        "The boundary layer separates near the trailing edge of the wing.",
        title="Separation",
    )
    upload(client, team, "Rocket nozzles expand hot gas to produce thrust.", title="Nozzles")
    answer = search(client, team, "boundary layers separating", mode="hybrid", limit=5)
    assert answer["mode"] == "hybrid" and answer["embedder"]["embedder"] == "wordllama"
    top = answer["hits"][0]
    assert top["document_title"] == "Separation" and top["rank"] == 1
    assert "<mark>boundary</mark> <mark>layer</mark> <mark>separates</mark>" in top["snippet"]
    assert top["scores"]["keyword"]["rank"] == 1 and top["scores"]["keyword"]["score"] > 0
    assert top["scores"]["vector"]["rank"] == 1 and -1 <= top["scores"]["vector"]["score"] <= 1
    assert top["scores"]["fused"] == {"score": top["score"], "rank": 1}
    keyword_only = search(client, team, "boundary", mode="keyword")["hits"]
    assert [h["document_title"] for h in keyword_only] == ["Separation"]
    assert keyword_only[0]["scores"]["vector"] == {"score": None, "rank": None}


def test_keyword_search_is_an_or_of_words_without_stopwords(
    client: TestClient[Any], team: Team
) -> None:
    upload(client, team, "Heat transfer in laminar flow.")
    upload(client, team, "Turbulent mixing layers.")
    hits = search(
        client, team, "what is known about heat transfer and turbulent mixing", mode="keyword"
    )["hits"]
    assert len(hits) == 2  # FTS5's default AND would have matched nothing
    assert search(client, team, "the of and", mode="keyword")["hits"] == []
    assert search(client, team, "???", mode="keyword")["hits"] == []
    weird = search(client, team, 'heat" OR NEAR(x) *', mode="hybrid")  # no FTS syntax leaks
    assert weird["hits"][0]["text"] == "Heat transfer in laminar flow."


def test_the_same_content_twice_is_the_same_document(client: TestClient[Any], team: Team) -> None:
    first = upload(client, team, "Identical content.", title="One")
    again = upload(client, team, "Identical content.", title="Two", expect=200)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["x-ingest-outcome"] == "unchanged"
    assert first.headers["location"].endswith(first.json()["id"])
    listed = client.get(team.url("/documents"), headers=team.auth()).json()["documents"]
    assert len(listed) == 1


def test_a_new_version_replaces_its_chunks(client: TestClient[Any], team: Team) -> None:
    first = upload(
        client, team, "Original wording about propellers.", external_id="handbook"
    ).json()
    old_chunks = client.get(
        team.url(f"/documents/{first['id']}/chunks"), headers=team.auth()
    ).json()
    updated = upload(
        client, team, "Revised wording about jet engines.", expect=200, external_id="handbook"
    )
    assert updated.headers["x-ingest-outcome"] == "updated"
    assert updated.json()["id"] == first["id"] and updated.json()["version"] == 2
    assert document(client, team, first["id"])["indexed_version"] == 2
    for mode in ("keyword", "vector", "hybrid"):
        texts = [h["text"] for h in search(client, team, "propellers wording", mode=mode)["hits"]]
        assert "Original wording about propellers." not in texts, mode
    assert search(client, team, "propellers", mode="keyword")["hits"] == []
    assert search(client, team, "jet engines", mode="keyword")["hits"][0]["document_version"] == 2
    new_chunks = client.get(
        team.url(f"/documents/{first['id']}/chunks"), headers=team.auth()
    ).json()
    assert {c["id"] for c in new_chunks}.isdisjoint(c["id"] for c in old_chunks)
    text = client.get(team.url(f"/documents/{first['id']}/text"), headers=team.auth()).json()
    assert (text["version"], text["text"]) == (2, "Revised wording about jet engines.")
    gone = client.get(
        team.url(f"/documents/{first['id']}/text"), params={"version": 1}, headers=team.auth()
    )
    assert gone.status_code == 404
    # a new version through PUT .../content too; the same bytes again change nothing
    put = client.put(
        team.url(f"/documents/{first['id']}/content"),
        content=b"# Third\n\nturbofans",
        headers={**team.auth(), "Content-Type": "text/markdown"},
    )
    assert (put.status_code, put.json()["version"], put.json()["mime_type"]) == (
        200,
        3,
        "text/markdown",
    )
    same = client.put(
        team.url(f"/documents/{first['id']}/content"),
        content=b"# Third\n\nturbofans",
        headers={**team.auth(), "Content-Type": "text/markdown"},
    )
    assert same.headers["x-ingest-outcome"] == "unchanged" and same.json()["version"] == 3


def test_bad_uploads_are_clear_problems(
    runtime: Runtime, client: TestClient[Any], team: Team
) -> None:
    unknown = upload(client, team, b"\x89PNG....", "image/png", expect=415)
    assert unknown.headers["content-type"].startswith(PROBLEM)
    assert "cannot index image/png" in unknown.json()["detail"]
    empty = upload(client, team, b"", expect=422)
    assert empty.json()["type"] == "/problems/empty-document"
    blank_html = upload(client, team, "<html><body> </body></html>", "text/html", expect=422)
    assert blank_html.json()["type"] == "/problems/empty-document"
    not_pdf = upload(client, team, b"hello", "application/pdf", expect=422)
    assert not_pdf.json()["type"] == "/problems/corrupt-document"
    not_utf8 = upload(client, team, b"\xff\xfe\xfa", "text/plain", expect=422)
    assert "UTF-8" in not_utf8.json()["detail"]
    too_big = upload(client, team, b"x" * (runtime.settings.max_body_bytes + 1), expect=413)
    assert too_big.headers["content-type"].startswith(PROBLEM)
    bad_tag = upload(client, team, "fine", expect=400, tags="Not A Tag!")
    assert "tags" in bad_tag.json()["detail"]
    assert client.get(team.url("/documents"), headers=team.auth()).json()["documents"] == []


def test_a_corrupt_pdf_fails_with_its_error_class(client: TestClient[Any], team: Team) -> None:
    broken = make_pdf([["Fine text."]])[:60] + b"\x00garbage" * 40
    created = upload(client, team, broken, "application/pdf").json()
    failed = document(client, team, created["id"])
    assert failed["status"] == "dead"  # retrying the same bytes cannot help
    assert failed["last_error_class"] == "CorruptDocument"
    assert "unreadable PDF" in failed["last_error_message"]
    letters = client.get(team.url("/knowledge/dead-letters"), headers=team.auth()).json()
    assert [(d["document_id"], d["error_class"]) for d in letters] == [
        (created["id"], "CorruptDocument")
    ]


def test_multipart_and_json_uploads(client: TestClient[Any], team: Team) -> None:
    form = client.post(
        team.url("/documents"),
        files={"file": ("notes.md", MARKDOWN.encode(), "application/octet-stream")},
        data={"tags": "handbook,aero", "metadata": '{"owner": "ops"}'},
        headers=team.auth(),
    )
    assert form.status_code == 201, form.text
    body = form.json()
    assert (body["mime_type"], body["title"], body["source"]) == (
        "text/markdown",
        "Aerodynamics handbook",
        "notes.md",
    )
    assert body["tags"] == ["aero", "handbook"] and body["metadata"] == {"owner": "ops"}
    as_json = client.post(
        team.url("/documents"),
        json={"text": "Plain words.", "title": "Given title", "tags": ["x"]},
        headers=team.auth(),
    )
    assert (as_json.status_code, as_json.json()["title"]) == (201, "Given title")


def test_bulk_json_lines(client: TestClient[Any], team: Team) -> None:
    lines = (
        '{"_id": "a", "title": "Wings", "text": "Lift and drag of wings."}\n'
        '{"_id": "b", "title": "Empty", "text": ""}\n'
        "not json\n"
        '{"_id": "c", "title": "Tails", "text": "Tail planes stabilise.", "metadata": {"year": 1960}}\n'
    )
    response = client.post(
        team.url("/documents/bulk"),
        content=lines,
        headers={**team.auth(), "Content-Type": "application/x-ndjson"},
    )
    report = response.json()
    assert (report["created"], report["updated"], report["unchanged"]) == (2, 0, 0)
    assert [r["line"] for r in report["rejected"]] == [2, 3]
    again = client.post(
        team.url("/documents/bulk"),
        content='{"_id": "a", "title": "Wings", "text": "Lift and drag of wings."}\n'
        '{"_id": "c", "title": "Tails", "text": "Tail planes stabilise well."}\n',
        headers={**team.auth(), "Content-Type": "application/x-ndjson"},
    ).json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 1, 1)
    hits = search(client, team, "tail planes", mode="keyword")["hits"]
    assert [h["text"] for h in hits] == ["Tail planes stabilise well."]


def test_filters_by_tag_and_document(client: TestClient[Any], team: Team) -> None:
    a = upload(client, team, "Wind tunnel testing of wings.", tags="aero").json()
    b = upload(client, team, "Wind turbines and their blades.", tags="energy").json()
    c = upload(client, team, "Wind shear near the ground.", tags=["aero", "weather"]).json()
    for mode in ("keyword", "vector", "hybrid"):
        by_tag = {
            h["document_id"] for h in search(client, team, "wind", mode=mode, tags=["aero"])["hits"]
        }
        assert by_tag == {a["id"], c["id"]}, mode
        both = {
            h["document_id"]
            for h in search(client, team, "wind", mode=mode, tags=["aero", "weather"])["hits"]
        }
        assert both == {c["id"]}, mode
        by_id = {
            h["document_id"]
            for h in search(client, team, "wind", mode=mode, document_ids=[b["id"]])["hits"]
        }
        assert by_id == {b["id"]}, mode
        assert search(client, team, "wind", mode=mode, tags=["nope"])["hits"] == []
    # tags change at once, without a new version
    client.patch(team.url(f"/documents/{b['id']}"), json={"tags": ["aero"]}, headers=team.auth())
    assert b["id"] in {
        h["document_id"] for h in search(client, team, "wind", tags=["aero"])["hits"]
    }
    via_get = client.get(
        team.url("/search"), params={"q": "wind", "tag": "weather"}, headers=team.auth("viewer")
    )
    assert [h["document_id"] for h in via_get.json()["hits"]] == [c["id"]]


def test_list_pages_and_delete(client: TestClient[Any], team: Team) -> None:
    ids = [upload(client, team, f"Document number {i}.").json()["id"] for i in range(5)]
    page = client.get(team.url("/documents"), params={"limit": 2}, headers=team.auth()).json()
    assert [d["id"] for d in page["documents"]] == ids[::-1][:2]
    rest = client.get(
        team.url("/documents"),
        params={"cursor": page["next_cursor"], "limit": 10},
        headers=team.auth(),
    )
    assert [d["id"] for d in rest.json()["documents"]] == ids[::-1][2:]
    assert (
        client.get(team.url("/documents"), params={"cursor": "@@"}, headers=team.auth()).status_code
        == 400
    )
    indexed = client.get(
        team.url("/documents"), params={"status": "indexed"}, headers=team.auth()
    ).json()
    assert len(indexed["documents"]) == 5
    assert client.delete(team.url(f"/documents/{ids[0]}"), headers=team.auth()).status_code == 204
    assert client.get(team.url(f"/documents/{ids[0]}"), headers=team.auth()).status_code == 404
    assert ids[0] not in {
        h["document_id"] for h in search(client, team, "document number", limit=10)["hits"]
    }


def test_feedback_is_stored(client: TestClient[Any], team: Team) -> None:
    upload(client, team, "Vortex generators delay separation.")
    hit = search(client, team, "vortex generators")["hits"][0]
    response = client.post(
        team.url("/search/feedback"),
        json={
            "query": "vortex generators",
            "chunk_id": hit["chunk_id"],
            "helpful": False,
            "mode": "hybrid",
            "rank": 1,
            "scores": hit["scores"],
            "comment": "too short",
        },
        headers=team.auth("viewer"),
    )
    assert response.status_code == 201, response.text
    stored = client.get(team.url("/search/feedback"), headers=team.auth()).json()
    assert [(f["chunk_id"], f["helpful"], f["document_id"]) for f in stored] == [
        (hit["chunk_id"], False, hit["document_id"])
    ]
    assert stored[0]["scores"]["keyword"]["rank"] == hit["scores"]["keyword"]["rank"]
    missing = client.post(
        team.url("/search/feedback"),
        json={"query": "x", "chunk_id": "chk_nope", "helpful": True},
        headers=team.auth(),
    )
    assert missing.status_code == 404


def test_permissions(client: TestClient[Any], team: Team) -> None:
    denied = upload(client, team, "A viewer cannot add this.", role="viewer", expect=403)
    assert denied.headers["content-type"].startswith(PROBLEM)
    assert client.post(team.url("/search"), json={"query": "x"}).status_code == 401
    assert (
        client.put(
            team.url("/knowledge/embedder"),
            json={"embedder": "hashing"},
            headers=team.auth("viewer"),
        ).status_code
        == 403
    )
    assert (
        client.get(team.url("/knowledge/embedders"), headers=team.auth("viewer")).status_code == 200
    )


def test_a_workspace_never_sees_another_workspaces_chunks(
    runtime: Runtime, client: TestClient[Any]
) -> None:
    alpha, beta = Team(runtime, "Alpha"), Team(runtime, "Beta")
    secret = upload(
        client, alpha, "Alpha's secret wind tunnel results for the X-1 wing.", tags="secret"
    ).json()
    upload(client, beta, "Beta's notes on gardening and tomatoes.")
    for mode in ("keyword", "vector", "hybrid"):
        for query in ("secret wind tunnel results X-1 wing", "tomatoes"):
            hits = search(client, beta, query, mode=mode, limit=50)["hits"]
            assert all(h["document_id"] != secret["id"] for h in hits), (mode, query)
            assert all("Alpha" not in h["text"] for h in hits)
    assert search(client, beta, "wind", document_ids=[secret["id"]])["hits"] == []
    # another workspace's document is not found, and a token cannot cross workspaces
    assert (
        client.get(beta.url(f"/documents/{secret['id']}"), headers=beta.auth()).status_code == 404
    )
    crossed = client.post(alpha.url("/search"), json={"query": "wind"}, headers=beta.auth())
    assert crossed.status_code in (403, 404)


def test_every_knowledge_table_with_tenant_rows_is_guarded(runtime: Runtime, team: Team) -> None:
    import apsw

    db = runtime.storage.workspace(team.id)
    with db.read() as conn:
        triggers = {
            r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'trigger'")
        }
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 'knowledge_%'"
                " AND name NOT LIKE 'knowledge_fts%'"
            )
        ]
    assert "knowledge_document_tags" in tables and "knowledge_terms" in tables
    for table in tables:
        assert f"tenant_guard_{table}_insert" in triggers, table
    with (
        pytest.raises(apsw.ConstraintError, match="does not belong to this workspace"),
        db.write() as conn,
    ):
        conn.execute(
            "INSERT INTO knowledge_terms (term, workspace_id, chunks) VALUES ('x', 'ws_other', 1)"
        )


def test_a_resync_updates_tags_and_metadata(runtime: Any) -> None:
    from workbench.knowledge.service import Knowledge
    from workbench.workspaces.service import create_workspace

    ws = create_workspace(runtime, "Sync")
    knowledge = Knowledge(runtime, ws.id, None)
    first, _ = knowledge.add(
        b"hello", media_type="text/plain", external_id="d1", tags=["old"], metadata={"v": 1}
    )
    same, outcome = knowledge.add(
        b"hello", media_type="text/plain", external_id="d1", tags=["new"], metadata={"v": 2}
    )
    assert outcome == "unchanged"
    assert (same.tags, same.metadata) == (["new"], {"v": 2})
    _, outcome = knowledge.add(
        b"hello again", media_type="text/plain", external_id="d1", tags=["newer"]
    )
    assert outcome == "updated"
    assert knowledge.get(first.id).tags == ["newer"]


def test_oversized_multipart_and_bulk_uploads_are_refused(
    runtime: Any, client: TestClient[Any], team: Team
) -> None:
    big = b"x" * (runtime.settings.max_body_bytes + 1)
    multipart = client.post(
        team.url("/documents"),
        files={"file": ("big.txt", big, "text/plain")},
        headers=team.auth("member"),
    )
    assert multipart.status_code == 413
    assert multipart.headers["content-type"].startswith("application/problem+json")
    bulk = client.post(
        team.url("/documents/bulk"),
        content=big,
        headers={**team.auth("member"), "Content-Type": "application/x-ndjson"},
    )
    assert bulk.status_code == 413
    listed = client.get(team.url("/documents"), headers=team.auth()).json()
    assert listed["documents"] == []  # nothing half-written
