"""The credit policy: a TOML file read once at start (``FUNDLINE_POLICY_FILE``).

Without that setting the mode's default ships with the package: ``policies/sandbox.toml``
(instant underwriting, automatic approval and funding) or ``policies/production.toml``
(manual review). Both files document every key. A file that is missing, not TOML, or breaks a
rule stops the server at start with the file and the key at fault; nothing is guessed.

``PolicyFile`` is the file's layout (one model per table, unknown keys forbidden, bounds as
field constraints); ``Policy`` is what the server reads and what ``GET /lender/v1/policy``
returns. Pydantic's errors are reworded into one sentence naming the key (``_reword``).
"""

from __future__ import annotations

import tomllib
import typing
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import annotated_types
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.dataclasses import dataclass
from pydantic_core import ErrorDetails, PydanticCustomError

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


# --- the file's layout -------------------------------------------------------------------------


def _iso_4217(value: Any) -> Any:
    if value not in CURRENCIES:
        raise PydanticCustomError(
            "policy", "must be an ISO 4217 code, not {value}", {"value": repr(value)}
        )
    return value


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _Limit(_Table):
    floor: int = Field(ge=0)
    cap: int = Field(ge=1)
    share_bp: int = Field(ge=0)
    history_days: int = Field(ge=1)

    @model_validator(mode="after")
    def _floor_below_cap(self) -> _Limit:
        if self.floor > self.cap:
            raise PydanticCustomError(
                "policy",
                "({floor}) is above limit.cap ({cap})",
                {"key": "floor", "floor": self.floor, "cap": self.cap},
            )
        return self


class _Offers(_Table):
    validity_days: int = Field(ge=1)


class _Requests(_Table):
    min_days_to_due: int = Field(ge=0)
    ttl_seconds: int = Field(ge=60)


class _Review(_Table):
    mode: Literal["auto", "manual"]
    auto_fund: bool


class _Servicing(_Table):
    default_after_days_late: int = Field(ge=0)


class _Plan(_Table):
    # Keys another kind of plan takes, refused here with why (see _reword).
    not_for: typing.ClassVar[dict[str, str]]

    advance_rate_percentage: int = Field(ge=1, le=BASIS_POINTS)
    fee_percentage: int = Field(ge=0, le=BASIS_POINTS - 1)


class _FixedDuration(_Plan):
    """One repayment ``repayment_duration_days`` after funding."""

    not_for = {
        "grace_days": "a FIXED_DURATION plan",
        "instalments": "a FIXED_DURATION plan (one repayment)",
    }
    repayment_type: Literal["FIXED_DURATION"]
    repayment_duration_days: int = Field(ge=1)

    def plan(self) -> PlanPolicy:
        return PlanPolicy(
            self.repayment_type,
            self.advance_rate_percentage,
            self.fee_percentage,
            self.repayment_duration_days,
        )


class _MultipleDuration(_Plan):
    """``instalments`` equal periods over ``repayment_duration_days``."""

    not_for = {"grace_days": "a MULTIPLE_DURATION plan"}
    repayment_type: Literal["MULTIPLE_DURATION"]
    repayment_duration_days: int = Field(ge=1)
    instalments: int = Field(ge=2)

    @model_validator(mode="after")
    def _instalments_fit(self) -> _MultipleDuration:
        if self.instalments > self.repayment_duration_days:
            raise PydanticCustomError(
                "policy",
                "must be an integer from 2 to {high}, not {value}",
                {
                    "key": "instalments",
                    "high": self.repayment_duration_days,
                    "value": self.instalments,
                },
            )
        return self

    def plan(self) -> PlanPolicy:
        return PlanPolicy(
            self.repayment_type,
            self.advance_rate_percentage,
            self.fee_percentage,
            self.repayment_duration_days,
            self.instalments,
        )


class _FixedDate(_Plan):
    """Repaid on the invoice's due date plus the grace days; no duration."""

    not_for = {
        "repayment_duration_days": "a FIXED_DATE plan",
        "instalments": "a FIXED_DATE plan",
    }
    repayment_type: Literal["FIXED_DATE"]
    grace_days: int = Field(default=0, ge=0)

    def plan(self) -> PlanPolicy:
        return PlanPolicy(
            self.repayment_type,
            self.advance_rate_percentage,
            self.fee_percentage,
            None,
            grace_days=self.grace_days,
        )


_PlanTable = Annotated[
    _FixedDuration | _MultipleDuration | _FixedDate, Field(discriminator="repayment_type")
]


class PolicyFile(_Table):
    """A policy file as written: its tables and ``[[plans]]``."""

    currency: Annotated[str, BeforeValidator(_iso_4217)]
    limit: _Limit
    offers: _Offers
    requests: _Requests
    review: _Review
    servicing: _Servicing
    plans: list[_PlanTable] = Field(min_length=1)

    def policy(self) -> Policy:
        return Policy(
            currency=self.currency,
            limit_floor=self.limit.floor,
            limit_cap=self.limit.cap,
            limit_share_bp=self.limit.share_bp,
            history_days=self.limit.history_days,
            offer_validity_days=self.offers.validity_days,
            review=self.review.mode,
            auto_fund=self.review.auto_fund,
            default_after_days_late=self.servicing.default_after_days_late,
            min_days_to_due=self.requests.min_days_to_due,
            request_ttl_seconds=self.requests.ttl_seconds,
            plans=tuple(table.plan() for table in self.plans),
        )


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
    try:
        return PolicyFile.model_validate(data).policy()
    except ValidationError as exc:
        raise PolicyError(_reword(min(exc.errors(), key=_reading_order), data)) from None


# --- pydantic's errors, reworded ---------------------------------------------------------------

# Of several faults, the one named is the first a reader of the file would meet: the tables
# and top-level keys, then each table's keys, then the rules across keys, unknown keys last.
_TOP = ("limit", "offers", "requests", "review", "servicing", "currency", "plans")
_FIELDS = ("limit", "offers", "review", "requests", "servicing", "plans")


def _reading_order(error: ErrorDetails) -> tuple[int, ...]:
    loc, kind = error["loc"], error["type"]
    top = str(loc[0]) if loc else ""
    if kind == "extra_forbidden":
        model, key = _located(list(loc))
        why = model.not_for.get(key) if issubclass(model, _Plan) else None
        if why is None:
            return (3, (*_TOP, "").index(top) if len(loc) > 1 else -1)
        # Refused before the plan's own keys are read, but after its rates.
        late = model is _FixedDuration and key == "instalments"
        return (1, _FIELDS.index(top), int(loc[1]), 3 if late else 1)
    if kind == "too_short" or (kind == "policy" and top == "limit"):
        return (2,)
    if len(loc) == 1:
        return (0, _TOP.index(top) if top in _TOP else len(_TOP))
    field = str(loc[-1])
    within = 0 if field in ("advance_rate_percentage", "fee_percentage") else 2
    return (1, _FIELDS.index(top), int(loc[1]) if top == "plans" else 0, within)


def _located(loc: list[Any]) -> tuple[type[BaseModel], str]:
    """The model that holds the key at ``loc`` (the plan's own, by its repayment type), and the
    key; ``loc`` loses the union's tag."""
    if len(loc) >= 3 and loc[0] == "plans":  # ("plans", 0, <repayment_type>, key...)
        return _PLANS[str(loc.pop(2))], str(loc[-1])
    if len(loc) >= 2 and loc[0] != "plans":
        return _TABLES[str(loc[0])], str(loc[-1])
    return PolicyFile, str(loc[-1]) if loc else ""


def _reword(error: ErrorDetails, data: dict[str, Any]) -> str:
    """One sentence naming the key, in the words the hand-written checks used."""
    kind, loc, value, ctx = error["type"], list(error["loc"]), error["input"], error.get("ctx", {})
    model, key = _located(loc)
    if "key" in ctx:  # a rule across keys, raised by the model: it names the key at fault
        loc.append(ctx["key"])
        key = ctx["key"]
    name = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
    name = name.removeprefix(".")
    if kind == "policy":
        return f"{name} {error['msg']}"
    if kind == "too_short":
        return "plans: at least one [[plans]] table is required"
    if kind == "union_tag_not_found":
        return f"{name}.repayment_type is required"
    if kind == "union_tag_invalid":
        shown = ", ".join(REPAYMENT_TYPES)
        return f"{name}.repayment_type must be one of {shown}, not {value['repayment_type']!r}"
    if kind == "missing":
        return f"{name} is required"
    if loc[:1] == ["plans"] and len(loc) <= 2:
        return "plans must be an array of tables ([[plans]])"
    if kind == "extra_forbidden":
        why = model.not_for.get(key) if issubclass(model, _Plan) else None
        return f"{name} does not apply to {why}" if why else f"unknown key {name}"
    if kind in ("model_type", "model_attributes_type"):
        return f"{name} must be a table ([{key}])"
    if kind == "bool_type":
        return f"{name} must be true or false, not {value!r}"
    if kind == "literal_error":
        choices = typing.get_args(model.model_fields[key].annotation)
        return f"{name} must be one of {', '.join(choices)}, not {value!r}"
    low, high = _bounds(model, key)
    if model is _MultipleDuration and key == "instalments":  # no more than one a day
        high = data["plans"][loc[1]].get("repayment_duration_days")
    bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
    return f"{name} must be an integer {bounds}, not {value!r}"


def _bounds(model: type[BaseModel], key: str) -> tuple[int, int | None]:
    low, high = 0, None
    for constraint in model.model_fields[key].metadata:
        if isinstance(constraint, annotated_types.Ge):
            low = int(constraint.ge)  # type: ignore[call-overload]
        elif isinstance(constraint, annotated_types.Le):
            high = int(constraint.le)  # type: ignore[call-overload]
    return low, high


_TABLES: dict[str, type[BaseModel]] = {
    name: field.annotation
    for name, field in PolicyFile.model_fields.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
}
_PLANS: dict[str, type[_Plan]] = {
    "FIXED_DURATION": _FixedDuration,
    "MULTIPLE_DURATION": _MultipleDuration,
    "FIXED_DATE": _FixedDate,
}
