"""The object store on S3 (moto's server on loopback) behind a failable proxy: the endpoint
dying mid-upload, server errors, slow answers, a missing bucket, refused credentials."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from tests.fault_lab import TEST_AWS, Case, Lab
from tests.faultkit import FaultRow, World, judge
from tests.servers import CountingProxy


def s3_world(lab: Lab, fault: str, **settings: str) -> tuple[World, CountingProxy, str]:
    """A world whose store is a fresh bucket on the lab's S3 server, reached through a proxy."""
    moto = lab.moto()
    proxy = CountingProxy(moto.endpoint).start()
    bucket = f"clips-{uuid.uuid4().hex[:10]}"
    direct_client(moto.endpoint).create_bucket(Bucket=bucket)
    world = lab.world(fault, RAILWATCH_STORE=f"s3://{bucket}/archive",
                      RAILWATCH_S3_ENDPOINT_URL=proxy.endpoint, **TEST_AWS, **settings)
    return world, proxy, bucket


def direct_client(endpoint: str) -> Any:
    from railwatch.adapters.s3 import S3Config

    return S3Config(endpoint_url=endpoint).client()


def proxied(inject: Callable[[CountingProxy], None], clear: Callable[[CountingProxy], None] | None = None
            ) -> Callable[[Lab, str, str], FaultRow]:
    """A case: the fault is injected at the proxy, the run goes, the fault clears, the rerun goes."""
    def run(lab: Lab, layer: str, fault: str) -> FaultRow:
        world, proxy, _ = s3_world(lab, fault)
        try:
            inject(proxy)
            during = world.backfill()
            (clear or CountingProxy.heal)(proxy)
            after = world.backfill()
            return judge(layer, fault, lab.baseline, world, during, after)
        finally:
            proxy.stop()
    return run


def missing_bucket(lab: Lab, layer: str, fault: str) -> FaultRow:
    """RAILWATCH_STORE names a bucket that does not exist yet; then it is created."""
    world, proxy, bucket = s3_world(lab, fault)
    try:
        missing = f"{bucket}-missing"
        world.settings["RAILWATCH_STORE"] = f"s3://{missing}/archive"
        during = world.backfill()
        direct_client(lab.moto().endpoint).create_bucket(Bucket=missing)
        after = world.backfill()
        return judge(layer, fault, lab.baseline, world, during, after)
    finally:
        proxy.stop()


def wrong_credentials(lab: Lab, layer: str, fault: str) -> FaultRow:
    """The endpoint knows only the right access key; the world first runs with another."""
    world, proxy, _ = s3_world(lab, fault)
    try:
        proxy.access_key = TEST_AWS["AWS_ACCESS_KEY_ID"]
        world.settings["AWS_ACCESS_KEY_ID"] = "AKIAWRONGKEY00000000"
        during = world.backfill()
        world.settings["AWS_ACCESS_KEY_ID"] = TEST_AWS["AWS_ACCESS_KEY_ID"]
        after = world.backfill()
        refused = sum(e.status == 403 for e in proxy.traffic.exchanges)
        row = judge(layer, fault, lab.baseline, world, during, after)
        assert refused <= 3, f"{refused} refused requests: credentials errors must not be retried"
        return row
    finally:
        proxy.stop()


def slow(proxy: CountingProxy) -> None:
    proxy.delay_s = 0.15


CASES = [
    Case("S3 store", "endpoint gone in the middle of an upload (connection cut), back later",
         proxied(lambda p: p.die_during_put(3))),
    Case("S3 store", "503 SlowDown burst (the first 8 requests)", proxied(lambda p: p.fail_next(8, 503))),
    Case("S3 store", "500 InternalError burst (8 uploads)",
         proxied(lambda p: p.fail_next(8, 500, methods=("PUT",)))),
    Case("S3 store", "slow answers (+150 ms per request)", proxied(slow)),
    Case("S3 store", "missing bucket, then created", missing_bucket),
    Case("S3 store", "wrong credentials, then fixed", wrong_credentials),
]
