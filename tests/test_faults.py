"""Each fault of bench/faults.py's table as a test: injected into real files and servers, the
run ends in a clear state, and after the fault clears a rerun converges to a clean run's counts
row by row, with nothing partial in the store and the failed attempts in the scene registry."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator

import pytest

from tests.cli_runs import PrefectServer, built_once, reporting_to
from tests.fault_cases import CASES
from tests.fault_lab import Case, Lab
from tests.faultkit import Baseline, render_world

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lab(prefect_server: PrefectServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The lab; its flows, and the CLI it runs, report to the test process's Prefect server (a
    real `prefect server start`, tests/conftest.py), as a profile's PREFECT_API_URL would point
    them, instead of starting one more server for the in-process runs."""
    # the catalog, rendered once for all the test processes
    simulated = built_once(tmp_path_factory, "fault-sim", render_world) / "simulator"

    def shared(compute: Callable[[], Baseline]) -> Baseline:
        """The clean run, made by the first test process that needs it (≈ 20 s, 2-3× that
        while the others run), read by the others."""
        folder = built_once(tmp_path_factory, "fault-baseline",
                            lambda f: (f / "baseline.pickle").write_bytes(pickle.dumps(compute())))
        made: Baseline = pickle.loads((folder / "baseline.pickle").read_bytes())  # our own file
        return made

    with reporting_to(prefect_server):
        made = Lab(tmp_path_factory.mktemp("faults"), prefect_api=lambda: prefect_server.api_url,
                   simulated=simulated, shared=shared)
        yield made
        made.close()


@pytest.mark.parametrize("case", CASES, ids=[f"{c.layer}: {c.fault}" for c in CASES])
def test_fault_is_survived_and_counts_converge(lab: Lab, case: Case) -> None:
    row = case.run(lab, case.layer, case.fault)
    assert row.clear_state, row.during
    assert row.after.state == "completed" and not row.after.failed, row.after
    assert row.diff.exact, row.diff
    assert (row.partial, row.objects_missing, row.objects_extra) == (0, 0, 0), row
