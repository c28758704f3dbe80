"""The checked-in eval set runs through the real runtime; regressions are found by comparing
two eval runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
from click.testing import CliRunner

from tests.conftest import Team
from workbench.assistant.evals import Evals
from workbench.assistant.models import EvalSetCreate
from workbench.assistant.service import Assistant
from workbench.cli import cli
from workbench.knowledge.service import Knowledge
from workbench.runtime import Runtime

EVAL_DIR = Path(__file__).parent / "assistant_eval"


def ingest_corpus(runtime: Runtime, workspace_id: str) -> dict[str, str]:
    knowledge = Knowledge(runtime, workspace_id, None)
    ids = {}
    for path in sorted((EVAL_DIR / "corpus").glob("*.md")):
        document, _ = knowledge.add(
            path.read_bytes(), media_type="text/markdown", filename=path.name, external_id=path.stem
        )
        ids[path.stem] = document.id
    return ids


def test_the_eval_set_has_enough_cases() -> None:
    data = msgspec.json.decode((EVAL_DIR / "cases.json").read_bytes(), type=EvalSetCreate)
    assert len(data.cases) >= 30
    assert sum(bool(c.expected_tools) for c in data.cases) >= 5
    assert sum(bool(c.expected_documents) for c in data.cases) >= 20


def test_eval_run_scores_and_regressions(runtime: Runtime, team: Team) -> None:
    ids = ingest_corpus(runtime, team.id)
    evals = Evals(Assistant(runtime, team.id, team.users["owner"].id, "owner"))
    data = msgspec.json.decode((EVAL_DIR / "cases.json").read_bytes(), type=EvalSetCreate)
    eval_set = evals.create_set(data)
    baseline = evals.run(eval_set.id)
    summary = baseline.summary
    print("\nextractive eval summary:", json.dumps(summary))
    assert summary["cases"] == len(data.cases)
    assert summary["failures"] == 0
    assert summary["passed"] >= 30
    assert summary["citation_precision"] >= 0.9
    assert summary["citation_recall"] >= 0.9
    assert summary["tool_accuracy"] == 1.0
    by_case = {r.case_id: r for r in baseline.results}
    assert by_case["backup-time"].passed and by_case["backup-time"].citation_recall == 1.0

    Knowledge(runtime, team.id, None).delete(ids["backups"])  # the knowledge gets worse
    candidate = evals.run(eval_set.id)
    comparison = evals.compare(baseline.id, candidate.id)
    regressed = {r.case_id for r in comparison.regressed}
    assert {"backup-time", "backup-retention", "restore-verify"} <= regressed
    assert "tea" not in regressed
    assert comparison.summary_delta["passed"] < 0


def test_cli_eval_assistant(runtime: Runtime, team: Team) -> None:
    ingest_corpus(runtime, team.id)
    result = CliRunner().invoke(
        cli,
        [
            "--data-dir",
            str(runtime.settings.data_path),
            "eval",
            "assistant",
            "--workspace",
            team.id,
            "--json",
            str(EVAL_DIR / "cases.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    run: dict[str, Any] = json.loads(result.stdout)
    assert run["summary"]["cases"] >= 30
    assert run["provider"] == "extractive"
    bad = CliRunner().invoke(
        cli,
        [
            "--data-dir",
            str(runtime.settings.data_path),
            "eval",
            "assistant",
            "--workspace",
            team.id,
            str(EVAL_DIR / "corpus" / "kitchen.md"),
        ],
    )
    assert bad.exit_code == 1
    assert "kitchen.md" in bad.stderr
