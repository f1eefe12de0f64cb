"""A model-graded metric's failed gradings, row by row, as a job's scores document keeps them.

A row whose judge (or embedding) call failed, or whose judge answer could not be used, scores 0 and
carries the error on its verdict (`judge.{metric}.error` on the result). The evaluation step lists
them beside the metric's per-row scores; the first rows' are kept, each message cut short, with the
count of all, so a job where every row's grading failed still fits its scores document.
"""

from __future__ import annotations

from typing import Any

MAX_STORED_JUDGE_ERRORS = 500
MAX_JUDGE_ERROR_CHARS = 300


def judge_errors_of(name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows (each with a `judge` verdict map, as results hold it) whose `name` verdict is an error."""
    found = []
    for row in rows:
        error = ((row.get("judge") or {}).get(name) or {}).get("error")
        if error:
            found.append(
                {
                    "row": int(row["row"]),
                    "code": str(error.get("code") or ""),
                    "message": str(error.get("message") or ""),
                }
            )
    return found


def row_judge_errors(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """The stored form: `judge_errors` (at most MAX_STORED_JUDGE_ERRORS, row order) and their count."""
    kept = [{**e, "message": e["message"][:MAX_JUDGE_ERROR_CHARS]} for e in errors[:MAX_STORED_JUDGE_ERRORS]]
    return {"judge_errors": kept, "judge_error_count": len(errors)}
