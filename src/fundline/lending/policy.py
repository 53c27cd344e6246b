"""The credit policy: a TOML file read once at start (``FUNDLINE_POLICY_FILE``).

Without that setting the mode's default ships with the package: ``policies/sandbox.toml``
(instant underwriting, automatic approval and funding) or ``policies/production.toml``
(manual review). Both files document every key. A file that is missing, not TOML, or breaks a
rule stops the server at start with the file and the key at fault; nothing is guessed.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fundline.config import Mode, Settings
from fundline.kit.money import BASIS_POINTS, CURRENCIES

REPAYMENT_TYPES = ("FIXED_DURATION", "MULTIPLE_DURATION", "FIXED_DATE")
REVIEWS = ("auto", "manual")


class PolicyError(ValueError):
    """The policy file cannot be used; the message names the file and the reason."""


@dataclass(frozen=True)
class PlanPolicy:
    """A pricing plan every offer gets (rates in basis points)."""

    repayment_type: str
    advance_rate_percentage: int
    fee_percentage: int
    repayment_duration_days: int | None
    instalments: int = 1
    grace_days: int = 0


@dataclass(frozen=True)
class Policy:
    currency: str
    limit_floor: int
    limit_cap: int
    limit_share_bp: int
    history_days: int
    offer_validity_days: int
    review: str
    auto_fund: bool
    default_after_days_late: int
    min_days_to_due: int
    request_ttl_seconds: int
    plans: tuple[PlanPolicy, ...]


def default_policy_file(mode: Mode) -> Path:
    """The policy shipped for ``mode``."""
    path = resources.files("fundline.lending") / "policies" / f"{mode.value}.toml"
    return Path(str(path))


def load_policy(settings: Settings) -> Policy:
    """The policy of ``FUNDLINE_POLICY_FILE``, else the mode's default; ``PolicyError`` if bad."""
    path = settings.policy_file or default_policy_file(settings.mode)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"credit policy {path}: cannot be read ({exc.strerror})") from None
    try:
        return parse_policy(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"credit policy {path}: not valid TOML ({exc})") from None
    except PolicyError as exc:
        raise PolicyError(f"credit policy {path}: {exc}") from None


def parse_policy(data: dict[str, Any]) -> Policy:
    """A ``Policy`` from a parsed TOML document; ``PolicyError`` naming the first bad key."""
    doc = _Table(data, "")
    limit, offers, requests = doc.table("limit"), doc.table("offers"), doc.table("requests")
    review, servicing = doc.table("review"), doc.table("servicing")
    currency = doc.string("currency", choices=CURRENCIES)
    plan_tables = doc.tables("plans")
    policy = Policy(
        currency=currency,
        limit_floor=limit.integer("floor", low=0),
        limit_cap=limit.integer("cap", low=1),
        limit_share_bp=limit.integer("share_bp", low=0),
        history_days=limit.integer("history_days", low=1),
        offer_validity_days=offers.integer("validity_days", low=1),
        review=review.string("mode", choices=REVIEWS),
        auto_fund=review.boolean("auto_fund"),
        min_days_to_due=requests.integer("min_days_to_due", low=0),
        request_ttl_seconds=requests.integer("ttl_seconds", low=60),
        default_after_days_late=servicing.integer("default_after_days_late", low=0),
        plans=tuple(_plan(table) for table in plan_tables),
    )
    if not policy.plans:
        raise PolicyError("plans: at least one [[plans]] table is required")
    if policy.limit_floor > policy.limit_cap:
        raise PolicyError(
            f"limit.floor ({policy.limit_floor}) is above limit.cap ({policy.limit_cap})"
        )
    for table in (doc, limit, offers, requests, review, servicing, *plan_tables):
        table.no_unknown_keys()
    return policy


def _plan(table: _Table) -> PlanPolicy:
    kind = table.string("repayment_type", choices=REPAYMENT_TYPES)
    advance = table.integer("advance_rate_percentage", low=1, high=BASIS_POINTS)
    fee = table.integer("fee_percentage", low=0, high=BASIS_POINTS - 1)
    if kind == "FIXED_DATE":
        # Repaid on the invoice's due date plus the grace days; no duration.
        table.forbid("repayment_duration_days", "instalments", why="a FIXED_DATE plan")
        return PlanPolicy(
            kind, advance, fee, None, 1, table.integer("grace_days", low=0, default=0)
        )
    table.forbid("grace_days", why=f"a {kind} plan")
    duration = table.integer("repayment_duration_days", low=1)
    if kind == "FIXED_DURATION":
        table.forbid("instalments", why="a FIXED_DURATION plan (one repayment)")
        return PlanPolicy(kind, advance, fee, duration)
    instalments = table.integer("instalments", low=2, high=duration)
    return PlanPolicy(kind, advance, fee, duration, instalments)


class _Table:
    """One TOML table, read key by key with the key's full name in every error."""

    def __init__(self, data: dict[str, Any], name: str) -> None:
        self.data, self.name, self.read = data, name, set[str]()

    def _get(self, key: str) -> Any:
        self.read.add(key)
        if key not in self.data:
            raise PolicyError(f"{self.name}{key} is required")
        return self.data[key]

    def table(self, key: str) -> _Table:
        value = self._get(key)
        if not isinstance(value, dict):
            raise PolicyError(f"{self.name}{key} must be a table ([{key}])")
        return _Table(value, f"{self.name}{key}.")

    def tables(self, key: str) -> list[_Table]:
        value = self._get(key)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise PolicyError(f"{self.name}{key} must be an array of tables ([[{key}]])")
        return [_Table(v, f"{self.name}{key}[{i}].") for i, v in enumerate(value)]

    def integer(
        self, key: str, *, low: int, high: int | None = None, default: int | None = None
    ) -> int:
        if default is not None and key not in self.data:
            return default
        value = self._get(key)
        if type(value) is not int or value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
            raise PolicyError(f"{self.name}{key} must be an integer {bounds}, not {value!r}")
        return value

    def string(self, key: str, *, choices: tuple[str, ...]) -> str:
        value = self._get(key)
        if value not in choices:
            shown = f"one of {', '.join(choices)}" if len(choices) <= 5 else "an ISO 4217 code"
            raise PolicyError(f"{self.name}{key} must be {shown}, not {value!r}")
        return str(value)

    def boolean(self, key: str) -> bool:
        value = self._get(key)
        if not isinstance(value, bool):
            raise PolicyError(f"{self.name}{key} must be true or false, not {value!r}")
        return value

    def forbid(self, *keys: str, why: str) -> None:
        for key in keys:
            if key in self.data:
                raise PolicyError(f"{self.name}{key} does not apply to {why}")

    def no_unknown_keys(self) -> None:
        unknown = sorted(set(self.data) - self.read)
        if unknown:
            raise PolicyError(f"unknown key {self.name}{unknown[0]}")
