"""HTTP routes over the result history: list with filters and paging, one result, its image,
and a CSV export of everything matching."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Query
from fastapi import Path as FastApiPath
from fastapi.responses import FileResponse, Response, StreamingResponse

from adapters.http.errors import ApiError, ErrorBody, answers, media
from gateway.model import ErrorCode
from gateway.result_rows import ResultQuery
from gateway.results import ResultStore

Outcome = Literal["pass", "fail", "error"]
MAX_ROW: Final = 2**63 - 1
"""SQLite's largest integer: row ids and offsets past it are refused (422), not a 500."""
EntryId = Annotated[int, FastApiPath(ge=1, le=MAX_ROW, description="the stored result's id")]
FAR_S: Final = 1e12


def _query(
    stream: str | None,
    outcome: Outcome | None,
    source: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int = 100,
    offset: int = 0,
) -> ResultQuery:
    return ResultQuery(
        stream=stream,
        passed={"pass": True, "fail": False}.get(outcome or ""),
        errors_only=outcome == "error",
        source=source,
        since=_epoch(since),
        until=_epoch(until),
        limit=limit,
        offset=offset,
    )


def _epoch(moment: datetime | None) -> float | None:
    """Seconds since 1970; a date outside what the platform converts is clamped (year 1, 9999)."""
    if moment is None:
        return None
    try:
        return moment.timestamp()
    except (OverflowError, OSError, ValueError):
        return -FAR_S if moment.year < 1970 else FAR_S


def results_router(store: ResultStore) -> APIRouter:
    router = APIRouter(tags=["results"], responses=answers(ErrorBody, 404))

    @router.get("/results")
    async def list_results(
        stream: str | None = None,
        outcome: Annotated[Outcome | None, Query(description="pass, fail or error")] = None,
        source: Annotated[str | None, Query(description="http, mqtt, modbus, opcua…")] = None,
        since: Annotated[datetime | None, Query(description="ISO 8601, inclusive")] = None,
        until: Annotated[datetime | None, Query(description="ISO 8601, exclusive")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_ROW)] = 0,
    ) -> dict[str, Any]:
        """Stored results, newest first."""
        query = _query(stream, outcome, source, since, until, limit, offset)
        results, total = await asyncio.to_thread(store.query, query)
        return {"results": results, "total": total, "limit": limit, "offset": offset}

    @router.get(
        "/results.csv",
        response_class=Response,
        responses=media(200, "text/csv", "the matching results as CSV"),
    )
    async def export_csv(
        stream: str | None = None,
        outcome: Outcome | None = None,
        source: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Response:
        """Every matching result as CSV, oldest first."""
        query = _query(stream, outcome, source, since, until)
        return StreamingResponse(
            _in_thread(store.csv_rows(query)),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="results.csv"'},
        )

    @router.get("/results/{entry_id}")
    async def one_result(entry_id: EntryId) -> dict[str, Any]:
        entry = await asyncio.to_thread(store.get, entry_id)
        if entry is None:
            raise ApiError(ErrorCode.BAD_REQUEST, f"no stored result {entry_id}", 404)
        return entry

    @router.get(
        "/results/{entry_id}/image",
        response_class=Response,
        responses=media(200, "image/jpeg", "the stored image as JPEG"),
    )
    async def result_image(entry_id: EntryId) -> Response:
        path = await asyncio.to_thread(store.image_path, entry_id)
        if path is None:
            raise ApiError(ErrorCode.BAD_REQUEST, f"no stored image for result {entry_id}", 404)
        return FileResponse(path, media_type="image/jpeg")

    return router


async def _in_thread(rows: Any) -> Any:
    """Iterate a blocking generator without blocking the loop."""
    done = object()
    while True:
        chunk = await asyncio.to_thread(next, rows, done)
        if chunk is done:
            return
        yield chunk
