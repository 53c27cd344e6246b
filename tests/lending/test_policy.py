"""The policy file's model: each fault named as the hand-written checks named it."""

from __future__ import annotations

import tomllib

import pytest

from fundline.lending.policy import PlanPolicy, PolicyError, parse_policy
from tests.support.lending import GOOD_POLICY

FIXED_DATE = 'repayment_type = "FIXED_DATE"'


def _parse(old: str, new: str) -> str:
    assert old in GOOD_POLICY
    with pytest.raises(PolicyError) as caught:
        parse_policy(tomllib.loads(GOOD_POLICY.replace(old, new, 1)))
    return str(caught.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('currency = "USD"', "currency = 5"), "currency must be an ISO 4217 code, not 5"),
        (('currency = "USD"', 'currency = "USD"\nextra = 1'), "unknown key extra"),
        (("validity_days = 7", "validity_days = true"), "must be an integer 1 or more, not True"),
        (("validity_days = 7", 'validity_days = "7"'), "must be an integer 1 or more, not '7'"),
        (("ttl_seconds = 600", "ttl_seconds = 59"), "requests.ttl_seconds must be an integer 60"),
        (('mode = "manual"', "mode = 1"), "review.mode must be one of auto, manual, not 1"),
        (
            (FIXED_DATE, 'repayment_type = "WEEKLY"'),
            "plans[0].repayment_type must be one of FIXED_DURATION, MULTIPLE_DURATION, "
            "FIXED_DATE, not 'WEEKLY'",
        ),
        ((FIXED_DATE, ""), "plans[0].repayment_type is required"),
        (
            ("fee_percentage = 100", "fee_percentage = 100\ninstalments = 2"),
            "plans[0].instalments does not apply to a FIXED_DATE plan",
        ),
        (("fee_percentage = 100", "fee_percentage = 100\nfoo = 1"), "unknown key plans[0].foo"),
        (
            (
                FIXED_DATE,
                'repayment_type = "FIXED_DURATION"\nrepayment_duration_days = 3\ninstalments = 4',
            ),
            "plans[0].instalments does not apply to a FIXED_DURATION plan (one repayment)",
        ),
        (
            (
                FIXED_DATE,
                'repayment_type = "MULTIPLE_DURATION"\nrepayment_duration_days = 3\ngrace_days = 4',
            ),
            "plans[0].grace_days does not apply to a MULTIPLE_DURATION plan",
        ),
        (
            (
                FIXED_DATE,
                'repayment_type = "MULTIPLE_DURATION"\nrepayment_duration_days = 3\n'
                "instalments = 1",
            ),
            "plans[0].instalments must be an integer from 2 to 3, not 1",
        ),
        (
            ("advance_rate_percentage = 9000", "advance_rate_percentage = 0"),
            "plans[0].advance_rate_percentage must be an integer from 1 to 10000, not 0",
        ),
        (("[servicing]\n", "servicing = 3\n[x]\n"), "servicing is required"),
    ],
)
def test_each_fault_is_named_by_its_key(change: tuple[str, str], message: str) -> None:
    assert message in _parse(*change)


def test_unknown_keys_are_named_after_every_other_fault() -> None:
    message = _parse("share_bp = 1000", "zz = 1\nshare_bp = -1")
    assert message.startswith("limit.share_bp must be an integer 0 or more")


def test_plans_are_the_variants_of_their_repayment_type() -> None:
    text = GOOD_POLICY.replace(
        "[[plans]]",
        '[[plans]]\nrepayment_type = "MULTIPLE_DURATION"\nadvance_rate_percentage = 9000\n'
        "fee_percentage = 400\nrepayment_duration_days = 90\ninstalments = 3\n[[plans]]",
    )
    assert parse_policy(tomllib.loads(text)).plans == (
        PlanPolicy("MULTIPLE_DURATION", 9000, 400, 90, instalments=3),
        PlanPolicy("FIXED_DATE", 9000, 100, None, grace_days=0),
    )
