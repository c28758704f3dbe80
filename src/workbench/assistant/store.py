"""SQL for assistant runs, steps, tool calls, prompts, configuration and evals."""

from __future__ import annotations

from typing import Any

import apsw
import msgspec

from workbench.db.connection import one, rows, scalar

_json = msgspec.json.Encoder()
_RUN_JSON = ("settings", "transcript", "passages", "citations", "flags", "output")


def dumps(value: Any) -> str:
    return _json.encode(value).decode()


def _decode(row: dict[str, Any] | None, fields: tuple[str, ...]) -> dict[str, Any] | None:
    if row is None:
        return None
    for name in fields:
        if name in row and row[name] is not None:
            row[name] = msgspec.json.decode(row[name])
    return row


# -- runs ---------------------------------------------------------------------------------


def insert_run(conn: apsw.Connection, run: dict[str, Any]) -> None:
    values = {k: (dumps(v) if k in _RUN_JSON else v) for k, v in run.items()}
    columns = ", ".join(values)
    conn.execute(
        f"INSERT INTO agent_runs ({columns}) VALUES ({', '.join(':' + k for k in values)})",
        values,
    )


def get_run(conn: apsw.Connection, run_id: str) -> dict[str, Any] | None:
    return _decode(one(conn, "SELECT * FROM agent_runs WHERE id = ?", (run_id,)), _RUN_JSON)


def update_run(conn: apsw.Connection, run_id: str, **fields: Any) -> None:
    values = {k: (dumps(v) if k in _RUN_JSON else v) for k, v in fields.items()}
    assignments = ", ".join(f"{k} = :{k}" for k in values)
    conn.execute(
        f"UPDATE agent_runs SET {assignments} WHERE id = :run_id", {**values, "run_id": run_id}
    )


def transition_run(
    conn: apsw.Connection, run_id: str, from_statuses: tuple[str, ...], to: str, **fields: Any
) -> bool:
    """Move a run to ``to`` only if it is in one of ``from_statuses``; False when it was not
    (another worker took it, or a person cancelled it meanwhile)."""
    values = {k: (dumps(v) if k in _RUN_JSON else v) for k, v in fields.items()}
    assignments = ", ".join(["status = :to", *(f"{k} = :{k}" for k in values)])
    marks = ", ".join(f":from_{n}" for n in range(len(from_statuses)))
    conn.execute(
        f"UPDATE agent_runs SET {assignments} WHERE id = :run_id AND status IN ({marks})",
        {
            **values,
            "to": to,
            "run_id": run_id,
            **{f"from_{n}": s for n, s in enumerate(from_statuses)},
        },
    )
    return conn.changes() > 0


def list_runs(
    conn: apsw.Connection, before_seq: int | None, limit: int, status: str | None
) -> list[dict[str, Any]]:
    where: list[str] = []
    params: list[Any] = []
    if before_seq is not None:
        where.append("seq < ?")
        params.append(before_seq)
    if status is not None:
        where.append("status = ?")
        params.append(status)
    sql = "SELECT * FROM agent_runs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY seq DESC LIMIT ?"
    params.append(limit)
    return [_decode(r, _RUN_JSON) for r in rows(conn, sql, params)]  # type: ignore[misc]


def runs_with_status(conn: apsw.Connection, status: str) -> list[str]:
    return [r[0] for r in conn.execute("SELECT id FROM agent_runs WHERE status = ?", (status,))]


# -- steps and tool calls -------------------------------------------------------------------


def add_step(
    conn: apsw.Connection,
    workspace_id: str,
    run_id: str,
    kind: str,
    detail: dict[str, Any],
    created_at: str,
    duration_ms: float,
) -> int:
    ordinal = (
        scalar(conn, "SELECT max(ordinal) FROM run_steps WHERE run_id = ?", (run_id,)) or 0
    ) + 1
    conn.execute(
        "INSERT INTO run_steps (run_id, workspace_id, ordinal, kind, detail, created_at,"
        " duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (run_id, workspace_id, ordinal, kind, dumps(detail), created_at, duration_ms),
    )
    return int(ordinal)


def steps(conn: apsw.Connection, run_id: str, after: int = 0) -> list[dict[str, Any]]:
    return [
        _decode(r, ("detail",))  # type: ignore[misc]
        for r in rows(
            conn,
            "SELECT run_id, ordinal, kind, detail, created_at, duration_ms"
            " FROM run_steps WHERE run_id = ? AND ordinal > ? ORDER BY ordinal",
            (run_id, after),
        )
    ]


def count_steps(conn: apsw.Connection, run_id: str) -> int:
    return int(scalar(conn, "SELECT count(*) FROM run_steps WHERE run_id = ?", (run_id,)))


def insert_tool_call(conn: apsw.Connection, workspace_id: str, call: dict[str, Any]) -> None:
    values = {
        **call,
        "workspace_id": workspace_id,
        "arguments": dumps(call["arguments"]),
        "result": None if call.get("result") is None else dumps(call["result"]),
    }
    conn.execute(
        "INSERT INTO tool_calls (id, run_id, workspace_id, step, tool, arguments, result, status,"
        " decision, reason, duration_ms, created_at) VALUES (:id, :run_id, :workspace_id,"
        " :step, :tool, :arguments, :result, :status, :decision, :reason, :duration_ms,"
        " :created_at)",
        values,
    )


def update_tool_call(
    conn: apsw.Connection,
    call_id: str,
    *,
    status: str,
    result: Any,
    reason: str,
    duration_ms: float,
) -> None:
    conn.execute(
        "UPDATE tool_calls SET status = ?, result = ?, reason = ?, duration_ms = ? WHERE id = ?",
        (status, None if result is None else dumps(result), reason, duration_ms, call_id),
    )


def tool_calls(conn: apsw.Connection, run_id: str) -> list[dict[str, Any]]:
    return [
        _decode(r, ("arguments", "result"))  # type: ignore[misc]
        for r in rows(
            conn,
            "SELECT id, run_id, step, tool, arguments, result, status, decision,"
            " reason, duration_ms, created_at FROM tool_calls WHERE run_id = ?"
            " ORDER BY step, created_at",
            (run_id,),
        )
    ]


def count_tool_calls(conn: apsw.Connection, run_id: str) -> int:
    return int(scalar(conn, "SELECT count(*) FROM tool_calls WHERE run_id = ?", (run_id,)))


# -- prompts and configuration --------------------------------------------------------------


def insert_prompt(
    conn: apsw.Connection,
    workspace_id: str,
    name: str,
    version: int,
    template: str,
    created_by: str | None,
    created_at: str,
) -> None:
    conn.execute(
        "INSERT INTO prompt_versions (name, version, workspace_id, template, created_by,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (name, version, workspace_id, template, created_by, created_at),
    )


def prompt(conn: apsw.Connection, name: str, version: int) -> dict[str, Any] | None:
    return one(
        conn, "SELECT * FROM prompt_versions WHERE name = ? AND version = ?", (name, version)
    )


def prompts(conn: apsw.Connection) -> list[dict[str, Any]]:
    return list(rows(conn, "SELECT * FROM prompt_versions ORDER BY name, version"))


def latest_prompt_version(conn: apsw.Connection, name: str) -> int:
    return int(
        scalar(
            conn, "SELECT coalesce(max(version), 0) FROM prompt_versions WHERE name = ?", (name,)
        )
    )


_CONFIG_JSON = ("approval_tools", "provider_settings")


def insert_config(conn: apsw.Connection, workspace_id: str, config: dict[str, Any]) -> int:
    values = {k: (dumps(v) if k in _CONFIG_JSON else v) for k, v in config.items()}
    conn.execute(
        "INSERT INTO assistant_config (workspace_id, provider, model, prompt_name,"
        " prompt_version, approval_tools, provider_settings, created_by, created_at)"
        " VALUES (:workspace_id, :provider, :model, :prompt_name, :prompt_version,"
        " :approval_tools, :provider_settings, :created_by, :created_at)",
        {**values, "workspace_id": workspace_id},
    )
    return conn.last_insert_rowid()


def active_config(conn: apsw.Connection) -> dict[str, Any] | None:
    return _decode(
        one(conn, "SELECT * FROM assistant_config ORDER BY id DESC LIMIT 1"), _CONFIG_JSON
    )


def config(conn: apsw.Connection, config_id: int) -> dict[str, Any] | None:
    return _decode(
        one(conn, "SELECT * FROM assistant_config WHERE id = ?", (config_id,)), _CONFIG_JSON
    )


def config_history(conn: apsw.Connection) -> list[dict[str, Any]]:
    return [
        _decode(r, _CONFIG_JSON)  # type: ignore[misc]
        for r in rows(conn, "SELECT * FROM assistant_config ORDER BY id DESC LIMIT 100")
    ]


# -- evals ----------------------------------------------------------------------------------


def insert_eval_set(conn: apsw.Connection, workspace_id: str, row: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO eval_sets (id, workspace_id, name, cases, created_at) VALUES (?, ?, ?, ?, ?)",
        (row["id"], workspace_id, row["name"], dumps(row["cases"]), row["created_at"]),
    )


def eval_set(conn: apsw.Connection, set_id: str) -> dict[str, Any] | None:
    return _decode(one(conn, "SELECT * FROM eval_sets WHERE id = ?", (set_id,)), ("cases",))


def eval_sets(conn: apsw.Connection) -> list[dict[str, Any]]:
    return [
        _decode(r, ("cases",))  # type: ignore[misc]
        for r in rows(conn, "SELECT * FROM eval_sets ORDER BY created_at")
    ]


def insert_eval_run(conn: apsw.Connection, workspace_id: str, row: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO eval_runs (id, workspace_id, set_id, provider, model, prompt_name,"
        " prompt_version, summary, results, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row["id"],
            workspace_id,
            row["set_id"],
            row["provider"],
            row["model"],
            row["prompt_name"],
            row["prompt_version"],
            dumps(row["summary"]),
            dumps(row["results"]),
            row["created_at"],
        ),
    )


def eval_run(conn: apsw.Connection, run_id: str) -> dict[str, Any] | None:
    return _decode(
        one(conn, "SELECT * FROM eval_runs WHERE id = ?", (run_id,)), ("summary", "results")
    )


def eval_runs(conn: apsw.Connection, set_id: str | None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM eval_runs"
    params: tuple[Any, ...] = ()
    if set_id:
        sql += " WHERE set_id = ?"
        params = (set_id,)
    return [
        _decode(r, ("summary", "results"))  # type: ignore[misc]
        for r in rows(conn, sql + " ORDER BY created_at DESC", params)
    ]
