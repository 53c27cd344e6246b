"""Every operator action leaves an audit entry, whichever surface it came through: who, what,
on which object, its fields before and after, and when (``GET /lender/v1/audit``)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from fundline.kit.db import Database
from fundline.lending.policy import Policy
from tests.support.factories import Tenant, make_operator_key
from tests.support.lending import make_financing_invoice, manual, serving_policy


async def _audit(client: httpx.AsyncClient, key: str, **params: str) -> list[dict[str, object]]:
    response = await client.get(
        "/lender/v1/audit", headers={"authorization": f"Bearer {key}"}, params=params
    )
    assert response.status_code == 200, response.text
    data: list[dict[str, object]] = response.json()["data"]
    return data


async def test_each_lender_api_action_is_audited_with_before_and_after(
    app: FastAPI, client: httpx.AsyncClient, db: Database, tenant: Tenant, policy: Policy
) -> None:
    key = await make_operator_key(db, "rita")
    auth = {"authorization": f"Bearer {key}"}
    with serving_policy(app, manual(policy)):
        rejected = await make_financing_invoice(db, tenant, policy, status="NEW")
        funded = await make_financing_invoice(db, tenant, policy, status="NEW")
        base = "/lender/v1/financing_invoices"
        assert (
            await client.post(
                f"{base}/{rejected}/reject", json={"reason": "payer unknown"}, headers=auth
            )
        ).status_code == 200
        assert (await client.post(f"{base}/{funded}/approve", headers=auth)).status_code == 200
        assert (await client.post(f"{base}/{funded}/fund", headers=auth)).status_code == 200
        repaid = await client.post(
            f"{base}/{funded}/repayments", json={"amount": 1000}, headers=auth
        )
        assert repaid.status_code == 200
        refused = await client.post(f"{base}/{rejected}/fund", headers=auth)
        assert refused.status_code == 409
    entries = await _audit(client, key)
    # Newest first; a refused action leaves no entry.
    assert [(e["action"], e["object_id"]) for e in entries] == [
        ("record_repayment", str(funded)),
        ("fund", str(funded)),
        ("approve", str(funded)),
        ("reject", str(rejected)),
    ]
    reject = entries[-1]
    assert reject["operator"] == "rita"
    assert reject["note"] == "payer unknown"
    assert reject["before"]["status"] == "NEW"  # type: ignore[index]
    assert reject["after"]["status"] == "REJECTED"  # type: ignore[index]
    repayment = entries[0]
    assert repayment["after"]["repaid_amount"] == 1000  # type: ignore[index]
    assert repayment["before"]["repaid_amount"] == 0  # type: ignore[index]
    assert [e["action"] for e in await _audit(client, key, action="fund")] == ["fund"]
    oldest = await _audit(client, key, order="asc", limit="1")
    assert oldest[0]["action"] == "reject"


async def test_the_reason_of_a_rejection_is_in_its_history(
    app: FastAPI, client: httpx.AsyncClient, db: Database, tenant: Tenant, policy: Policy
) -> None:
    key = await make_operator_key(db, "sam")
    with serving_policy(app, manual(policy)):
        fi = await make_financing_invoice(db, tenant, policy, status="NEW")
    response = await client.post(
        f"/lender/v1/financing_invoices/{fi}/reject",
        json={"reason": "duplicate invoice"},
        headers={"authorization": f"Bearer {key}"},
    )
    history = response.json()["history"]
    assert history[-1]["cause"] == "rejected by operator sam: duplicate invoice"


async def test_a_reason_too_long_is_refused(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, policy: Policy
) -> None:
    key = await make_operator_key(db, "tom")
    fi = await make_financing_invoice(db, tenant, policy, status="NEW")
    response = await client.post(
        f"/lender/v1/financing_invoices/{fi}/reject",
        json={"reason": "x" * 501},
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 422
