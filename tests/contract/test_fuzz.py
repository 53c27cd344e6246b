"""Schemathesis against Fundline in-process, with real credentials and real objects, on both
specs: Fundline's own ``/openapi.json`` (every surface: Monite's ``/v1``, Connect, lender,
sandbox, operations) and Monite's OpenAPI for the operations Fundline serves.

Every phase runs: examples, coverage and fuzzing with the ids of real objects from the
configuration, then stateful sequences that take their ids from the responses. The checks are
``not_a_server_error``, ``status_code_conformance`` and ``response_schema_conformance``; any
failure fails the test with Schemathesis's report and a curl command to reproduce it. Every
request is also watched by the tenancy guard.

In CI the runs are seeded (``FUNDLINE_FUZZ_SEED``) and small: each spec on one backend, so
that PostgreSQL and SQLite each take a whole run (about 85 s of CPU in all).
``scripts/fuzz --minutes N`` runs both specs on both backends for longer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support import fuzz

# (spec, backend) in CI; scripts/fuzz adds the other two pairs.
RUNS = [("fundline", "postgres"), ("monite", "sqlite")]
if fuzz.SECONDS:
    RUNS += [("fundline", "sqlite"), ("monite", "postgres")]


@pytest.fixture
def fuzz_url(request: pytest.FixtureRequest, backend: str) -> str:
    return str(request.getfixturevalue(f"{backend}_url"))


@pytest.fixture
async def world(fuzz_url: str) -> AsyncIterator[fuzz.World]:
    async with fuzz.world(fuzz_url) as built:
        yield built


@pytest.mark.parametrize(("which", "backend"), RUNS, ids=[f"{s}-{b}" for s, b in RUNS])
@pytest.mark.parametrize("phases", ["unit", "stateful"])
def test_no_failures(world: fuzz.World, which: str, backend: str, phases: str) -> None:
    outcome = fuzz.run(fuzz.load(world, which, stateful=phases == "stateful"))
    fuzz.record(outcome.figures(spec=which, backend=backend, phases=phases, seed=str(fuzz.SEED)))
    assert outcome.requests, "Schemathesis sent no request"
    assert not outcome.failures, outcome.report()
    assert not world.guard.violations, world.guard.report()
