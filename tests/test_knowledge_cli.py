"""``workbench ingest`` and ``workbench search`` through click's runner."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from tests.test_knowledge_parsing import MARKDOWN, make_pdf
from workbench.cli import cli


def run(data: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--data-dir", str(data), *args])


def _workspace(data: Path) -> str:
    created = run(data, "workspace", "create", "Docs")
    assert created.exit_code == 0, created.output
    return created.output.strip()


def test_ingest_files_folders_and_json_lines_then_search(tmp_path: Path) -> None:
    data = tmp_path / "data"
    workspace = _workspace(data)
    folder = tmp_path / "docs"
    (folder / "nested").mkdir(parents=True)
    (folder / "handbook.md").write_text(MARKDOWN)
    (folder / "nested" / "plates.pdf").write_bytes(
        make_pdf([["Supersonic flow over flat plates."]])
    )
    (folder / "nested" / "logo.png").write_bytes(b"\x89PNG")  # skipped inside a folder
    (folder / ".hidden.txt").write_text("never read")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        '{"_id": "1", "title": "Flutter", "text": "Flutter couples bending and torsion."}\n'
        '{"_id": "2", "title": "Empty", "text": ""}\n'
    )
    single = tmp_path / "note.txt"
    single.write_text("A plain note about vortex generators.")

    result = run(
        data,
        "ingest",
        "--workspace",
        workspace,
        "--tag",
        "aero",
        str(folder),
        str(corpus),
        str(single),
    )
    assert result.exit_code == 2, result.output  # one JSON-lines record was rejected
    assert f"{corpus}:2: rejected: the record has no text" in result.stderr
    assert result.stdout.strip().splitlines()[-1] == "4 created, 1 rejected, 1 skipped; 0 failed"

    again = run(data, "ingest", "--workspace", workspace, str(folder), str(single))
    assert again.exit_code == 0, again.output
    assert again.stdout.strip().splitlines()[-1] == "3 unchanged, 1 skipped; 0 failed"

    found = run(data, "search", "--workspace", workspace, "flat plates supersonic", "--json")
    assert found.exit_code == 0, found.output
    answer = json.loads(found.stdout)
    assert answer["hits"][0]["text"].startswith("Supersonic flow over flat plates.")
    assert answer["hits"][0]["tags"] == ["aero"]

    text = run(
        data, "search", "--workspace", workspace, "torsion", "--mode", "keyword", "--limit", "1"
    )
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[0].startswith("1. Flutter [doc_") and "chars 0-" in lines[0]
    assert lines[1] == "   Flutter couples bending and <mark>torsion</mark>."
    assert lines[2].startswith("   keyword ")
    assert lines[-1].startswith("1 hits in ") and lines[-1].endswith("ms (keyword)")


def test_ingest_refuses_an_unreadable_file_given_by_name(tmp_path: Path) -> None:
    data = tmp_path / "data"
    workspace = _workspace(data)
    image = tmp_path / "logo.png"
    image.write_bytes(b"\x89PNG")
    result = run(data, "ingest", "--workspace", workspace, str(image))
    assert result.exit_code == 2
    assert "logo.png: rejected: cannot index" in result.stderr


def test_ingest_and_search_need_an_existing_workspace(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _workspace(data)
    note = tmp_path / "a.txt"
    note.write_text("x")
    missing = "ws_" + "0" * 32
    result = run(data, "ingest", "--workspace", missing, str(note))
    assert (result.exit_code, result.stderr) == (1, "Error: workspace not found\n")
    found = run(data, "search", "--workspace", missing, "x")
    assert (found.exit_code, found.stderr) == (1, "Error: workspace not found\n")


def test_embedder_command_switches_and_lists(tmp_path: Path) -> None:
    data = tmp_path / "data"
    workspace = _workspace(data)
    note = tmp_path / "a.txt"
    note.write_text("Ailerons roll the aircraft.")
    assert run(data, "ingest", "--workspace", workspace, str(note)).exit_code == 0
    switched = run(data, "knowledge", "embedder", "--workspace", workspace, "hashing")
    assert switched.exit_code == 0, switched.output
    lines = switched.stdout.splitlines()
    assert "hashing/blake2b-words-bigrams active: 1/1 vectors" in lines[0]
    assert "wordllama/l2_supercat retired: 0/1 vectors" in lines[1]
    answer = json.loads(
        run(
            data, "search", "--workspace", workspace, "roll ailerons", "--mode", "vector", "--json"
        ).stdout
    )
    assert answer["embedder"]["embedder"] == "hashing" and answer["hits"]


def test_ingest_a_beir_folder_takes_the_corpus_not_the_queries(tmp_path: Path) -> None:
    from tests.test_retrieval import _tiny_beir

    data = tmp_path / "data"
    workspace = _workspace(data)
    dataset = _tiny_beir(tmp_path / "beir")
    result = run(data, "ingest", "--workspace", workspace, str(dataset))
    assert result.exit_code == 2  # the corpus's empty record is rejected
    assert result.stdout.strip().splitlines()[-1] == "3 created, 1 rejected, 1 skipped; 0 failed"
    hits = json.loads(
        run(data, "search", "--workspace", workspace, "shock waves wedge", "--json").stdout
    )
    assert {h["document_title"] for h in hits["hits"]} <= {"Shock waves", "Flutter", "Heating"}
