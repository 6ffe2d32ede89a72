"""`gateway workflow run`: a workflow over image files, folders and videos from the shell."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from gateway.batch import BatchInput, BatchRunner, Summary, find_inputs
from gateway.workflow import ParameterError, Workflow, WorkflowDefinitionError


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(
            "    -   /s" if speed is None else f"{speed:7.1f}/s", style="progress.data.speed"
        )


def _parameters(values: tuple[str, ...]) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{value!r}: use NAME=VALUE", param_hint="--param")
        try:
            parameters[name] = orjson.loads(text)
        except orjson.JSONDecodeError:
            parameters[name] = text
    return parameters


@click.group()
def workflow() -> None:
    """Run workflows outside the gateway (batch over files)."""


@workflow.command("run")
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
    help="Folder for OUT/<input>/results.json, aggregated_results.csv/.jsonl, failures.jsonl.",
)  # fmt: skip
@click.option("--every", default=1, show_default=True, type=click.IntRange(min=1),
              help="Videos: run on every Nth frame.")  # fmt: skip
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Images processed at once.")  # fmt: skip
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE",
              help="Override a workflow parameter (VALUE is JSON when it parses).")  # fmt: skip
@click.option("--quality", default=90, show_default=True, type=click.IntRange(10, 100),
              help="JPEG quality of image outputs.")  # fmt: skip
def run_batch(
    spec: Path,
    inputs: tuple[Path, ...],
    out_dir: Path,
    every: int,
    threads: int,
    params: tuple[str, ...],
    quality: int,
) -> None:
    """Run the workflow SPEC (JSON or YAML) over INPUTs: image files, folders (searched
    recursively) and video files.

    Writes OUT/<input>/results.json per image (OUT/<video>/frame_NNNNNN/ per sampled frame) with
    image outputs as JPEG beside it, then OUT/aggregated_results.csv and .jsonl over everything
    done. Run it again after an interruption: inputs already done are skipped. Exits 1 when an
    input failed (listed in OUT/failures.jsonl).

    \b
    Example:
      gateway workflow run inspect.yaml shots/ line.mp4 --every 10 -o results/ -p confidence=0.5
    """
    console = Console(stderr=True, soft_wrap=True, highlight=False)
    try:
        loaded = Workflow.load(spec)
        sources = find_inputs(inputs)
        runner = BatchRunner(
            loaded.compiled,
            out_dir,
            parameters=_parameters(params),
            every=every,
            threads=threads,
            image_quality=quality,
        )
    except WorkflowDefinitionError as exc:
        raise click.ClickException(str(exc)) from None
    except (ParameterError, FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    summary = _run_with_progress(runner, sources, console)
    console.print(
        f"{summary.processed} processed, {summary.skipped} already done, "
        f"{len(summary.failed)} failed, of {summary.total}; results in {out_dir}",
        markup=False,
    )
    if summary.failed:
        _report_failures(summary.failed, out_dir, console)
        sys.exit(1)


def _run_with_progress(runner: BatchRunner, sources: list[BatchInput], console: Console) -> Summary:
    """The batch under a progress bar: count, rate, elapsed and ETA."""
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("counting inputs", total=None)

        def on_total(total: int) -> None:
            progress.update(task, total=total, description="inspecting")

        return runner.run(sources, on_total, lambda item, ok: progress.advance(task))


def _report_failures(failed: list[dict[str, Any]], out_dir: Path, console: Console) -> None:
    for failure in failed[:5]:
        where = failure["input"] + (
            "" if failure["frame"] is None else f" frame {failure['frame']}"
        )
        console.print(Text.assemble(("failed ", "red"), f"{where}: {failure['error']}"))
    console.print(f"all failures: {out_dir / 'failures.jsonl'}", markup=False)
