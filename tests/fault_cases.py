"""Every fault of the table, in its order (layer by layer)."""

from __future__ import annotations

from tests import faults_compute, faults_config, faults_data, faults_planet, faults_stac, faults_store
from tests.fault_lab import Case

CASES: list[Case] = [*faults_planet.CASES, *faults_stac.CASES, *faults_store.CASES, *faults_data.CASES,
                     *faults_compute.CASES, *faults_config.CASES]
