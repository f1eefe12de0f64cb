"""`--wait`: follow a dataset version until it is ready or failed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from promptopt.cli.core.context import EXIT_FAILURE, CliError
from promptopt.cli.core.waiting import StatusLine, wait_until

if TYPE_CHECKING:
    from promptopt.cli.datasets.api import DatasetApi

DEFAULT_WAIT_TIMEOUT_S = 600.0
DONE_STATUSES = frozenset({"ready", "failed"})


def find_version(dataset: dict[str, Any], number: int) -> dict[str, Any] | None:
    """Version `number` among the dataset's listed versions."""
    for version in dataset.get("versions") or []:
        if isinstance(version, dict) and version.get("version") == number:
            return version
    return None


def wait_for_version(
    datasets: DatasetApi, dataset_id: str, number: int, *, timeout_s: float, line: StatusLine | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Poll until version `number` is ready or failed; return (dataset, version)."""
    line = line or StatusLine()

    def fetch() -> tuple[dict[str, Any], dict[str, Any]]:
        dataset: dict[str, Any] = datasets.get(dataset_id).body or {}
        version = find_version(dataset, number)
        if version is None:
            raise CliError(
                f"version {number} is not among the versions of {dataset_id} the API lists", EXIT_FAILURE
            )
        return dataset, version

    def status(state: tuple[dict[str, Any], dict[str, Any]]) -> str:
        return str(state[1].get("status"))

    def timed_out(state: tuple[dict[str, Any], dict[str, Any]], elapsed: float) -> CliError:
        return CliError(
            f"{dataset_id} version {number} is still {status(state)} after {elapsed:.0f}s; look again "
            f"later with: promptopt datasets get {dataset_id}",
            EXIT_FAILURE,
        )

    try:
        return wait_until(
            fetch,
            settled=lambda state: status(state) in DONE_STATUSES,
            show=lambda state, _: line.show(f"waiting for {dataset_id} version {number}: {status(state)}"),
            timed_out=timed_out,
            timeout_s=timeout_s,
        )
    finally:
        line.finish()
