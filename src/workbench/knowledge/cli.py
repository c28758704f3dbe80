"""Command line for the knowledge base: ``ingest``, ``search``, ``eval retrieval`` and
``knowledge`` (dead letters, retry, embedder). Registered by ``knowledge.plugin``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from workbench.errors import WorkbenchError

SKIPPED_SUFFIXES = {".jsonl"}


def _fail(exc: Exception) -> click.ClickException:
    detail = getattr(exc, "detail", None) or str(exc)
    return click.ClickException(detail.splitlines()[0] if detail else repr(exc))


def _files(paths: tuple[Path, ...]) -> list[Path]:
    """Files as given, and every file under the folders given (sorted, hidden ones skipped)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            # a BEIR dataset folder: its corpus is the documents, its queries are not
            beir_queries = {
                q for q in path.rglob("queries.jsonl") if (q.parent / "corpus.jsonl").is_file()
            }
            found.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and not p.is_symlink()  # a link inside a folder may point anywhere
                and p.resolve().is_relative_to(path.resolve())
                and p not in beir_queries
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            found.append(path)
    return found


def add_commands(cli: Any) -> None:
    @cli.command("ingest")
    @click.option("--workspace", "workspace_id", required=True, help="Workspace id.")
    @click.option("--tag", "tags", multiple=True, help="Tag every document (repeatable).")
    @click.option(
        "--enqueue",
        is_flag=True,
        help="Leave the pipeline to the workers instead of running it here.",
    )
    @click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
    @click.pass_obj
    def ingest(
        state: Any, workspace_id: str, tags: tuple[str, ...], enqueue: bool, paths: tuple[Path, ...]
    ) -> None:
        """Add files, folders (recursively) and BEIR .jsonl corpora to a workspace's knowledge
        base, then run the ingestion pipeline with a progress bar.

        \b
        Example:
            workbench ingest --workspace ws_0190... docs/ handbook.pdf corpus.jsonl
        """
        from workbench.knowledge import parsing
        from workbench.knowledge.jobs import enqueue_ingest
        from workbench.knowledge.pipeline import Ingestion
        from workbench.knowledge.routes import parse_jsonl
        from workbench.knowledge.service import Knowledge

        runtime = state.runtime()
        try:
            service = Knowledge(runtime, workspace_id, None, "owner")
        except WorkbenchError as exc:
            raise _fail(exc) from exc
        pending: list[tuple[str, int]] = []
        counts = {"created": 0, "updated": 0, "unchanged": 0, "rejected": 0, "skipped": 0}
        files = _files(paths)
        explicit = {p.resolve() for p in paths if p.is_file()}
        with click.progressbar(files, label="reading", file=sys.stderr) as bar:
            for path in bar:
                try:
                    if path.suffix.lower() in SKIPPED_SUFFIXES:
                        records, rejected = parse_jsonl(path.read_bytes())
                        report = service.add_records(records, enqueue=False)
                        for row in rejected + report.rejected:
                            click.echo(f"{path}:{row['line']}: rejected: {row['reason']}", err=True)
                        counts["rejected"] += len(rejected) + len(report.rejected)
                        for outcome in ("created", "updated", "unchanged"):
                            counts[outcome] += getattr(report, outcome)
                        pending.extend(_queued(service, report.document_ids))
                        continue
                    try:
                        parsing.canonical_type(None, path.name)
                    except WorkbenchError:
                        if path.resolve() not in explicit:
                            counts["skipped"] += 1
                            continue
                        raise
                    document, outcome = service.add(
                        path.read_bytes(),
                        media_type=None,
                        filename=path.name,
                        tags=list(tags) or None,  # no --tag: keep the tags it has
                        external_id=f"file:{path.resolve()}",
                        enqueue=False,
                    )
                    counts[outcome] += 1
                    if outcome != "unchanged":
                        pending.append((document.id, document.version))
                except WorkbenchError as exc:
                    counts["rejected"] += 1
                    click.echo(f"{path}: rejected: {exc.detail}", err=True)
        failed = 0
        if enqueue:
            enqueue_ingest(runtime, workspace_id, pending)
        elif pending:
            ingestion = Ingestion(runtime, workspace_id)
            with click.progressbar(length=len(pending), label="indexing", file=sys.stderr) as bar:
                for start in range(0, len(pending), 64):
                    batch = pending[start : start + 64]
                    failed += len(ingestion.run(batch).failed)
                    bar.update(len(batch))
        summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
        click.echo(
            f"{summary or 'nothing to do'}; {failed} failed"
            + (" (queued for the workers)" if enqueue else "")
        )
        if failed or counts["rejected"]:
            sys.exit(2)

    @cli.command("search")
    @click.option("--workspace", "workspace_id", required=True, help="Workspace id.")
    @click.option(
        "--mode",
        type=click.Choice(["keyword", "vector", "hybrid"]),
        default="hybrid",
        show_default=True,
    )
    @click.option("--limit", type=click.IntRange(1, 200), default=10, show_default=True)
    @click.option("--tag", "tags", multiple=True, help="Only documents with this tag (repeatable).")
    @click.option("--json", "as_json", is_flag=True, help="Print the whole answer as JSON.")
    @click.argument("query")
    @click.pass_obj
    def search(
        state: Any,
        workspace_id: str,
        mode: str,
        limit: int,
        tags: tuple[str, ...],
        as_json: bool,
        query: str,
    ) -> None:
        """Search a workspace's knowledge base; print each hit with its citation.

        \b
        Example:
            workbench search --workspace ws_0190... "boundary layer transition" --mode hybrid
        """
        import msgspec

        from workbench.knowledge.models import SearchRequest
        from workbench.knowledge.service import Knowledge

        try:
            request = msgspec.convert(
                {"query": query, "mode": mode, "limit": limit, "tags": list(tags)}, SearchRequest
            )
            response = Knowledge(state.runtime(), workspace_id, None, "owner").search(request)
        except (WorkbenchError, msgspec.ValidationError) as exc:
            raise _fail(exc) from exc
        if as_json:
            click.echo(msgspec.json.encode(response).decode())
            return
        for hit in response.hits:
            parts = [
                f"{k} {s.score:.3f} (#{s.rank})"
                for k, s in hit.scores.items()
                if s.score is not None and s.rank
            ]
            click.echo(
                f"{hit.rank}. {hit.document_title} [{hit.document_id} v{hit.document_version} chars {hit.char_start}-{hit.char_end}]"
            )
            click.echo(f"   {hit.snippet}")
            click.echo(f"   {'; '.join(parts)}")
        click.echo(f"{len(response.hits)} hits in {response.took_ms:.1f} ms ({response.mode})")

    eval_group = cli.commands.get("eval")
    if not isinstance(eval_group, click.Group):

        @cli.group("eval")
        def eval_group() -> None:
            """Evaluate quality on reference datasets."""

    @eval_group.command("retrieval")
    @click.option(
        "--mode",
        type=click.Choice(["keyword", "vector", "hybrid", "all"]),
        default="hybrid",
        show_default=True,
    )
    @click.option("--json", "as_json", is_flag=True, help="End with one JSON line of the metrics.")
    @click.argument("dataset_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
    @click.pass_obj
    def eval_retrieval(state: Any, mode: str, as_json: bool, dataset_dir: Path) -> None:
        """Ingest a BEIR dataset (corpus.jsonl, queries.jsonl, qrels/test.tsv) into a scratch
        workspace and report nDCG@10, Recall@100, MRR@10, query latency and ingestion speed.
        With --mode all the JSON line carries hybrid at the top and every mode under "modes".

        \b
        Example:
            workbench eval retrieval ../shared/datasets/cranfield --mode all --json
        """
        from workbench.knowledge.evaluation import MODES, evaluate

        modes = list(MODES) if mode == "all" else [mode]

        def progress(stage: str, done: int, total: int) -> None:
            click.echo(f"{stage}: {done}/{total}", err=True)

        try:
            from workbench.plugins import get_plugin_manager

            pm = get_plugin_manager(state.plugins_dir or None)  # no data directory is touched
            results = evaluate(dataset_dir, modes, pm=pm, progress=progress)  # type: ignore[arg-type]
        except (WorkbenchError, FileNotFoundError) as exc:
            raise _fail(exc) from exc
        for name, r in results.items():
            click.echo(
                f"{name:8} nDCG@10 {r['ndcg@10']:.4f}  Recall@100 {r['recall@100']:.4f}  MRR@10 {r['mrr@10']:.4f}"
                f"  p50 {r['p50_ms']:.1f} ms  p95 {r['p95_ms']:.1f} ms  ingest {r['chunks_per_s']:.0f} chunks/s"
            )
        if as_json:
            top = results.get("hybrid") or next(iter(results.values()))
            line = {
                k: top[k]
                for k in ("ndcg@10", "recall@100", "mrr@10", "p50_ms", "p95_ms", "chunks_per_s")
            }
            line.update(mode=top["mode"], queries=top["queries"], chunks=top["chunks"])
            if len(results) > 1:
                line["modes"] = results
            click.echo(json.dumps(line))

    @cli.group("knowledge")
    def knowledge_group() -> None:
        """Knowledge base administration: dead letters, retries, the embedder."""

    @knowledge_group.command("dead-letters")
    @click.option("--workspace", "workspace_id", required=True, help="Workspace id.")
    @click.pass_obj
    def dead_letters(state: Any, workspace_id: str) -> None:
        """List documents whose ingestion gave up, with the error.

        \b
        Example:
            workbench knowledge dead-letters --workspace ws_0190...
        """
        from workbench.knowledge.service import Knowledge

        try:
            letters = Knowledge(state.runtime(), workspace_id, None, "owner").dead_letters()
        except WorkbenchError as exc:
            raise _fail(exc) from exc
        for letter in letters:
            click.echo(
                f"{letter.document_id} v{letter.version} after {letter.attempts} attempts: {letter.error_class}: {letter.error_message}"
            )
        click.echo(f"{len(letters)} dead letters")

    @knowledge_group.command("retry")
    @click.option("--workspace", "workspace_id", required=True, help="Workspace id.")
    @click.argument("document_ids", nargs=-1, required=True)
    @click.pass_obj
    def retry(state: Any, workspace_id: str, document_ids: tuple[str, ...]) -> None:
        """Retry ingestion of failed or dead documents (in this process).

        \b
        Example:
            workbench knowledge retry --workspace ws_0190... doc_0190...
        """
        from workbench.knowledge.pipeline import Ingestion
        from workbench.knowledge.service import Knowledge

        runtime = state.runtime()
        try:
            service = Knowledge(runtime, workspace_id, None, "owner")
            for document_id in document_ids:
                document = service.retry(document_id)
                Ingestion(runtime, workspace_id).run([(document.id, document.version)])
                click.echo(f"{document_id}: {service.get(document_id).status}")
        except WorkbenchError as exc:
            raise _fail(exc) from exc

    @knowledge_group.command("embedder")
    @click.option("--workspace", "workspace_id", required=True, help="Workspace id.")
    @click.argument("name", required=False)
    @click.pass_obj
    def embedder(state: Any, workspace_id: str, name: str | None) -> None:
        """Show the indexes, or switch the embedder to NAME (re-embeds, then switches).

        \b
        Example:
            workbench knowledge embedder --workspace ws_0190... hashing
        """
        from workbench.knowledge.pipeline import Ingestion
        from workbench.knowledge.service import Knowledge

        runtime = state.runtime()
        try:
            service = Knowledge(runtime, workspace_id, None, "owner")
            if name:
                index = service.switch_embedder(name)
                if index.status == "building":
                    from workbench.db.connection import scalar

                    with service.db.read() as conn:
                        seq = scalar(
                            conn, "SELECT seq FROM knowledge_indexes WHERE id = ?", (index.id,)
                        )
                    Ingestion(runtime, workspace_id).rebuild(int(seq))
            for info in service.indexes():
                click.echo(
                    f"{info.id} {info.embedder}/{info.model} {info.status}: {info.vectors}/{info.chunks} vectors"
                )
        except WorkbenchError as exc:
            raise _fail(exc) from exc


def _queued(service: Any, document_ids: list[str]) -> list[tuple[str, int]]:
    out = []
    for document_id in document_ids:
        document = service.get(document_id)
        if document.status == "queued":
            out.append((document.id, document.version))
    return out
