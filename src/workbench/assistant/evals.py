"""Eval sets and eval runs: cases go through the real runtime (the workspace's active
provider, model and prompt), and each result keeps citation precision and recall, phrase
match, tool-call accuracy, failure and latency. Comparing two eval runs names the cases that
regressed."""

from __future__ import annotations

import time
from collections.abc import Callable
from statistics import mean
from typing import Any

import msgspec

from workbench.assistant import store
from workbench.assistant.models import (
    CaseResult,
    EvalCase,
    EvalComparison,
    EvalRun,
    EvalSet,
    EvalSetCreate,
    Regression,
    RunCreate,
    RunDetail,
)
from workbench.assistant.service import Assistant
from workbench.clock import isoformat
from workbench.errors import NotFound, Unprocessable
from workbench.ids import new_id

METRICS = ("citation_precision", "citation_recall", "phrase_match", "tool_accuracy")
PASS_THRESHOLD = 0.5


class Evals:
    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.db = assistant.db

    def create_set(self, data: EvalSetCreate) -> EvalSet:
        ids = [c.id for c in data.cases]
        if len(ids) != len(set(ids)):
            raise Unprocessable("case ids must be unique within a set")
        created = EvalSet(
            id=new_id("evs"),
            name=data.name,
            cases=data.cases,
            created_at=isoformat(self.assistant.runtime.clock.now()),
        )
        with self.db.write() as conn:
            store.insert_eval_set(
                conn, self.assistant.workspace_id, {**msgspec.to_builtins(created)}
            )
        return created

    def sets(self) -> list[EvalSet]:
        with self.db.read() as conn:
            return [msgspec.convert(r, EvalSet) for r in store.eval_sets(conn)]

    def get_set(self, set_id: str) -> EvalSet:
        with self.db.read() as conn:
            row = store.eval_set(conn, set_id)
        if row is None:
            raise NotFound("eval set not found")
        return msgspec.convert(row, EvalSet)

    def run(self, set_id: str, progress: Callable[[CaseResult], None] | None = None) -> EvalRun:
        eval_set = self.get_set(set_id)
        config = self.assistant.config_row()
        results = []
        for case in eval_set.cases:
            result = self._run_case(case)
            results.append(result)
            if progress:
                progress(result)
        run = EvalRun(
            id=new_id("evr"),
            set_id=set_id,
            provider=config["provider"],
            model=config["model"],
            prompt_name=config["prompt_name"],
            prompt_version=config["prompt_version"],
            created_at=isoformat(self.assistant.runtime.clock.now()),
            summary=summarize(results),
            results=results,
        )
        with self.db.write() as conn:
            store.insert_eval_run(conn, self.assistant.workspace_id, msgspec.to_builtins(run))
        return run

    def _run_case(self, case: EvalCase) -> CaseResult:
        started = time.perf_counter()
        detail = self.assistant.run_now(
            RunCreate(question=case.question, output_schema=case.output_schema)
        )
        latency = (time.perf_counter() - started) * 1000
        return score_case(case, detail, latency, self._document_keys(detail))

    def _document_keys(self, detail: RunDetail) -> dict[str, set[str]]:
        """Each cited document's id, title and external id, so a case may name any of them."""
        from workbench.assistant.retrieval import document_keys

        ids = {c.document_id for c in detail.run.citations}
        return document_keys(self.assistant.runtime, self.assistant.workspace_id, ids)

    def get_run(self, eval_run_id: str) -> EvalRun:
        with self.db.read() as conn:
            row = store.eval_run(conn, eval_run_id)
        if row is None:
            raise NotFound("eval run not found")
        return msgspec.convert(row, EvalRun)

    def compare(self, baseline_id: str, candidate_id: str) -> EvalComparison:
        baseline, candidate = self.get_run(baseline_id), self.get_run(candidate_id)
        if baseline.set_id != candidate.set_id:
            raise Unprocessable("the two eval runs are of different eval sets")
        before = {r.case_id: r for r in baseline.results}
        regressed: list[Regression] = []
        improved: list[Regression] = []
        for after in candidate.results:
            old = before.get(after.case_id)
            if old is None:
                continue
            if old.passed != after.passed:
                target = regressed if old.passed else improved
                target.append(
                    Regression(
                        case_id=after.case_id,
                        metric="passed",
                        before=old.passed,
                        after=after.passed,
                    )
                )
            for metric in METRICS:
                a, b = getattr(old, metric), getattr(after, metric)
                if a is not None and b is not None and abs(a - b) > 1e-9:
                    (regressed if b < a else improved).append(
                        Regression(case_id=after.case_id, metric=metric, before=a, after=b)
                    )
        delta: dict[str, float | None] = {}
        for key, value in candidate.summary.items():
            old_value = baseline.summary.get(key)
            if isinstance(value, int | float) and isinstance(old_value, int | float):
                delta[key] = round(value - old_value, 6)
        return EvalComparison(
            baseline=baseline_id,
            candidate=candidate_id,
            regressed=regressed,
            improved=improved,
            summary_delta=delta,
        )


def score_case(
    case: EvalCase, detail: RunDetail, latency_ms: float, keys: dict[str, set[str]]
) -> CaseResult:
    run = detail.run
    cited = {c.document_id for c in run.citations}
    expected = {d.lower() for d in case.expected_documents}

    def matches(document_id: str) -> bool:
        return bool({k.lower() for k in keys.get(document_id, {document_id})} & expected)

    precision = recall = None
    if expected:
        hits = {d for d in cited if matches(d)}
        precision = len(hits) / len(cited) if cited else 0.0
        found = {
            e for e in expected if any(e in {k.lower() for k in keys.get(d, {d})} for d in cited)
        }
        recall = len(found) / len(expected)
    phrase = None
    if case.expected_phrases:
        answer = (run.answer or "").lower()
        phrase = sum(p.lower() in answer for p in case.expected_phrases) / len(
            case.expected_phrases
        )
    tools = None
    if case.expected_tools:
        calls = [(c.tool, c.arguments) for c in detail.tool_calls if c.status == "succeeded"]
        tools = sum(
            any(_tool_matches(e.tool, e.arguments, c) for c in calls) for e in case.expected_tools
        ) / len(case.expected_tools)
    scores = [s for s in (precision, recall, phrase, tools) if s is not None]
    passed = run.status == "succeeded" and all(s >= PASS_THRESHOLD for s in scores)
    return CaseResult(
        case_id=case.id,
        run_id=run.id,
        status=run.status,
        error_class=run.error_class,
        citation_precision=precision,
        citation_recall=recall,
        phrase_match=phrase,
        tool_accuracy=tools,
        latency_ms=round(latency_ms, 3),
        passed=passed,
    )


def _tool_matches(tool: str, expected: dict[str, Any], call: tuple[str, dict[str, Any]]) -> bool:
    name, arguments = call
    if name != tool:
        return False
    for key, value in expected.items():
        got = arguments.get(key)
        if isinstance(value, str) and isinstance(got, str):
            if value.lower() not in got.lower():
                return False
        elif got != value:
            return False
    return True


def summarize(results: list[CaseResult]) -> dict[str, Any]:
    def avg(metric: str) -> float | None:
        values = [getattr(r, metric) for r in results if getattr(r, metric) is not None]
        return round(mean(values), 4) if values else None

    latencies = sorted(r.latency_ms for r in results)
    return {
        "cases": len(results),
        "passed": sum(r.passed for r in results),
        "failures": sum(r.status != "succeeded" for r in results),
        **{metric: avg(metric) for metric in METRICS},
        "latency_p50_ms": latencies[len(latencies) // 2] if latencies else None,
        "latency_p95_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
        if latencies
        else None,
    }
