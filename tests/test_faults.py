"""Each fault of bench/faults.py's table as a test: injected into real files and servers, the
run ends in a clear state, and after the fault clears a rerun converges to a clean run's counts
row by row, with nothing partial in the store and the failed attempts in the scene registry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prefect.testing.utilities import prefect_test_harness

from tests.cli_runs import built_once
from tests.fault_cases import CASES
from tests.fault_lab import Case, Lab
from tests.faultkit import render_world

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The lab, its flows reporting to a Prefect API of their own (patient with a busy machine);
    the CLI it runs reports to the test process's Prefect server, started when first asked for."""
    simulated = built_once(tmp_path_factory, "fault-sim", render_world) / "simulator"  # one render
    with prefect_test_harness(server_startup_timeout=300):  # for all the test processes
        made = Lab(tmp_path_factory.mktemp("faults"),
                   prefect_api=lambda: str(request.getfixturevalue("prefect_server").api_url),
                   simulated=simulated)
        yield made
        made.close()


@pytest.mark.parametrize("case", CASES, ids=[f"{c.layer}: {c.fault}" for c in CASES])
def test_fault_is_survived_and_counts_converge(lab: Lab, case: Case) -> None:
    row = case.run(lab, case.layer, case.fault)
    assert row.clear_state, row.during
    assert row.after.state == "completed" and not row.after.failed, row.after
    assert row.diff.exact, row.diff
    assert (row.partial, row.objects_missing, row.objects_extra) == (0, 0, 0), row
