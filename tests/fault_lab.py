"""The fault lab: the simulated catalog rendered once, a clean run's baseline, and the servers
the faults are injected into, each started on first use and stopped at the end."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.faultkit import Baseline, FaultRow, World, render_world

FAST_RETRIES = "[0.2, 0.5]"  # the same retries as production, sooner (RAILWATCH_TASK_RETRY_DELAYS_S)
TEST_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1"}


class Lab:
    """Worlds under one root folder, sharing the simulated scenes and the servers."""

    def __init__(self, root: Path, prefect_api: Callable[[], str] | None = None,
                 simulated: Path | None = None,
                 shared: Callable[[Callable[[], Baseline]], Baseline] | None = None) -> None:
        self.root = root
        # the Prefect API URL for the faults that run the CLI in a subprocess (a running server,
        # asked for on first use); without, the CLI starts its ephemeral API in the world's home
        self.prefect_api = prefect_api
        # the rendered catalog (a simulator folder from `render_world`), else rendered here
        self.simulated = simulated or render_world(root / "simulated")
        self._stops: list[Callable[[], None]] = []
        self._servers: dict[str, Any] = {}
        self._baselines: dict[str, Baseline] = {}
        # the simulator baseline made once for all the labs of a session (pytest-xdist's
        # processes): given how to compute it, it returns the first lab's
        self.shared = shared

    def world(self, name: str, **settings: str) -> World:
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        home = self.root / slug
        n = 1
        while home.exists():
            n += 1
            home = self.root / f"{slug}-{n}"
        return World.create(home, self.simulated, RAILWATCH_TASK_RETRY_DELAYS_S=FAST_RETRIES, **settings)

    @property
    def baseline(self) -> Baseline:
        """A fault-free run of the world's days from the simulator catalog: the counts every
        faulted world reading that catalog must reach (its rows hold nothing of the lab's own:
        store keys, the simulator's scene ids; so one lab's serves every lab of a session)."""
        return self.baseline_of("simulator", lambda: self.world("clean"), shareable=True)

    def baseline_of(self, name: str, make_world: Callable[[], World],
                    shareable: bool = False) -> Baseline:
        """The baseline of worlds of one kind (e.g. another catalog: its rows name that source),
        from a fault-free run of the world `make_world` gives, made once (once per session
        when `shareable` and the lab was given a `shared`)."""
        def clean_run() -> Baseline:
            clean = make_world()
            outcome = clean.backfill()
            assert outcome.state == "completed" and not outcome.failed, outcome
            return Baseline(clean.counts(), clean.store_audit()[0])

        if name not in self._baselines:
            self._baselines[name] = (self.shared(clean_run) if shareable and self.shared is not None
                                     else clean_run())
        return self._baselines[name]

    def server(self, name: str, start: Callable[[], tuple[Any, Callable[[], None]]]) -> Any:
        """A server started once by `start` (which returns it and how to stop it)."""
        if name not in self._servers:
            server, stop = start()
            self._servers[name] = server
            self._stops.append(stop)
        return self._servers[name]

    def moto(self) -> Any:
        """moto's S3 server on loopback (test credentials in this process's environment)."""
        from tests.servers import MotoServer

        def start() -> tuple[Any, Callable[[], None]]:
            for key, value in TEST_AWS.items():
                os.environ.setdefault(key, value)
            server = MotoServer().start()
            return server, server.stop

        return self.server("moto", start)

    def close(self) -> None:
        for stop in reversed(self._stops):
            stop()
        self._stops.clear()
        self._servers.clear()


@dataclass(frozen=True)
class Case:
    """One fault: its layer, what is injected, and how to run it in a lab."""

    layer: str
    fault: str
    run: Callable[[Lab, str, str], FaultRow]  # (lab, layer, fault) -> its row
