"""The benchmark book: a deterministic financing portfolio, generated in chunks for COPY.

Everything is a pure function of the seed: the world (partners, entities, counterparts,
businesses, offers and plans) and each chunk of financing invoices (with their receivables,
requests, instalments, status history and ledger entries). The data is what Fundline's own
code would have left: amounts from ``lending.pricing.price``, schedules from
``lending.schedule``, invoice totals from ``receivables.totals``, statuses that the servicing
tick leaves alone (a FUNDED invoice has nothing overdue, a LATE one is late but not yet past
the policy's default, an offer follows its invoices: DEFAULTED > LATE > CURRENT). No DRAFT
is seeded: a draft lives one hour, then the worker releases it.

The hot entities (the ones the load scripts use) are healthy borrowers: paid, funded, new and
rejected invoices only, so their offers stay CURRENT and they can request financing.
"""

from __future__ import annotations

import json
import random
import tomllib
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from fundline.config import Mode
from fundline.lending import pricing
from fundline.lending.policy import PlanPolicy, Policy, default_policy_file, parse_policy
from fundline.lending.schedule import build_schedule, due_dates
from fundline.models.financing import (
    LIVE_STATUSES,
    FinancingRequestStatus,
    WCBusinessStatus,
    WCInvoiceStatus,
    WCOfferStatus,
)
from fundline.models.receivable import ReceivablesStatus
from fundline.receivables.totals import document_totals, line_amounts

CURRENCY = "USD"

# Every table the seed writes, and the columns it gives (any other column must be nullable;
# ``check_columns`` compares this with the migrated schema before loading anything).
COLUMNS: dict[str, tuple[str, ...]] = {
    "partners": ("id", "name", "created_at", "updated_at"),
    "api_clients": ("id", "partner_id", "secret_hash", "created_at", "updated_at"),
    "entities": (
        "id", "partner_id", "type", "status", "email", "phone", "website", "tax_id",
        "address", "organization", "created_at", "updated_at",
    ),
    "entity_users": (
        "id", "entity_id", "login", "first_name", "last_name", "email", "role_id", "status",
        "created_at", "updated_at",
    ),
    "counterparts": (
        "id", "entity_id", "type", "is_customer", "is_vendor", "legal_name", "first_name",
        "last_name", "email", "tax_id", "language", "reminders_enabled",
        "default_billing_address_id", "counterpart_name", "created_at", "updated_at",
    ),
    "counterpart_addresses": (
        "id", "counterpart_id", "line1", "city", "state", "postal_code", "country",
        "created_at", "updated_at",
    ),
    "financing_businesses": (
        "id", "entity_id", "partner_id", "status", "legal_name", "ein", "address", "owner",
        "bank_routing_number", "bank_account_number", "onboarded_at", "created_at", "updated_at",
    ),
    "financing_offers": (
        "id", "business_id", "entity_id", "status", "currency", "total_amount",
        "reserved_amount", "outstanding_amount", "expires_at", "accepted_at", "issued_at",
        "created_at", "updated_at",
    ),
    "financing_pricing_plans": (
        "id", "offer_id", "position", "repayment_type", "advance_rate_percentage",
        "fee_percentage", "repayment_duration_days", "instalments", "grace_days",
    ),
    "receivables": (
        "id", "entity_id", "type", "status", "document_id", "currency", "entity_user_id",
        "counterpart_id", "counterpart_name", "counterpart_type",
        "counterpart_billing_address_id", "counterpart", "issuer", "line_items", "subtotal",
        "total_vat_amount", "total_amount", "amount_paid", "payment_terms", "issue_date",
        "due_date", "paid_at", "file_language", "details", "created_at", "updated_at",
    ),
    "financing_requests": (
        "id", "entity_id", "partner_id", "status", "expires_at", "created_at", "updated_at",
    ),
    "financing_invoices": (
        "id", "partner_id", "entity_id", "request_id", "offer_id", "pricing_plan_id",
        "invoice_id", "live_invoice_id", "type", "status", "document_id", "issue_date",
        "due_date", "total_amount", "currency", "description", "payer_type",
        "payer_business_name", "payer_first_name", "payer_last_name",
        "advance_rate_percentage", "fee_percentage", "requested_amount", "fee_amount",
        "principal_amount", "repayment_amount", "repayment_date", "next_due_date",
        "repaid_amount", "confirmed_at", "approved_at", "funded_at", "closed_at", "created_at",
        "updated_at",
    ),
    "financing_instalments": (
        "id", "financing_invoice_id", "sequence", "due_date", "amount", "fee_amount",
        "principal_amount", "paid_amount",
    ),
    "financing_status_history": (
        "id", "financing_invoice_id", "from_status", "to_status", "cause", "at",
    ),
    "ledger_entries": (
        "id", "entity_id", "financing_invoice_id", "kind", "currency", "memo", "created_at",
    ),
    "ledger_postings": (
        "id", "entry_id", "financing_invoice_id", "account", "amount", "currency",
    ),
}  # fmt: skip

# Final status of a request's invoices, and its weight; one request's invoices share it.
S = WCInvoiceStatus
STATUS_MIX = (
    (S.PAID, 38),
    (S.FUNDED, 30),
    (S.NEW, 10),
    (S.LATE, 8),
    (S.REJECTED, 8),
    (S.DEFAULTED, 6),
)
HEALTHY_MIX = tuple((s, w) for s, w in STATUS_MIX if s not in (S.LATE, S.DEFAULTED))
# How long ago (days) a request of that final status was made.
AGE_DAYS = {
    S.NEW: (0.05, 5.0),
    S.FUNDED: (1.0, 25.0),
    S.LATE: (62.0, 85.0),
    S.PAID: (70.0, 365.0),
    S.REJECTED: (10.0, 300.0),
    S.DEFAULTED: (150.0, 365.0),
}
FUNDED_PATH = frozenset({S.FUNDED, S.LATE, S.PAID, S.DEFAULTED})
TERMS_DAYS = (30, 45, 60)
CITIES = (
    ("New York", "NY", "10001"),
    ("Austin", "TX", "73301"),
    ("Chicago", "IL", "60601"),
    ("Denver", "CO", "80202"),
    ("Seattle", "WA", "98101"),
    ("Boston", "MA", "02108"),
)
WORDS = (
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Wonka",
    "Tyrell", "Cyberdyne", "Soylent", "Aperture", "Oscorp", "Gringotts", "Monarch",
)  # fmt: skip
FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Linus", "Margaret")
LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton")
PRODUCTS = ("Consulting hours", "Design work", "Hosting", "Support plan", "Hardware", "Licences")

Row = tuple[Any, ...]
Id = str


@dataclass(frozen=True)
class Config:
    """What ``python -m bench.seed`` was asked for."""

    invoices: int
    entities: int
    partners: int
    hot_entities: int
    hot_share: float
    spare: int
    chunk: int
    seed: int


_V4_CLEAR = ~((0xF << 76) | (0x3 << 62))
_V4_SET = (0x4 << 76) | (0x2 << 62)


def new_id(rng: random.Random) -> Id:
    """A version-4 UUID from ``rng`` (the same seed gives the same ids), as 32 hex digits:
    asyncpg takes that as it is, and a string is five times cheaper to make than a UUID."""
    return f"{rng.getrandbits(128) & _V4_CLEAR | _V4_SET:032x}"


def dashed(value: Id) -> str:
    return str(uuid.UUID(value))


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# --- the world: partners, entities, counterparts, offers and plans --------------------------


@dataclass
class Counterpart:
    id: Id
    type: str
    name: str
    first_name: str | None
    last_name: str | None
    billing_address_id: Id
    document: str  # the receivable's ``counterpart`` JSON


@dataclass
class EntityInfo:
    id: Id
    partner_id: Id
    user_id: Id
    name: str
    issuer: str  # the receivable's ``issuer`` JSON
    counterparts: list[Counterpart]
    business_id: Id
    offer_id: Id
    plans: list[tuple[Id, PlanPolicy]]
    hot: bool


@dataclass
class World:
    now: datetime
    partners: list[dict[str, Id]]
    entities: list[EntityInfo]
    hot: list[EntityInfo]
    cold: list[EntityInfo]
    rows: dict[str, list[Row]]  # the small tables, loaded before the chunks
    policy: Policy


def production_policy() -> Policy:
    """The policy ``fundline serve`` loads in production mode: its plans go on every offer."""
    path = default_policy_file(Mode.PRODUCTION)
    return parse_policy(tomllib.loads(path.read_text(encoding="utf-8")))


def make_world(cfg: Config, *, now: datetime, secret_hash: str) -> World:
    rng = random.Random(f"{cfg.seed}:world")
    policy = production_policy()
    plans = policy.plans
    rows: dict[str, list[Row]] = defaultdict(list)
    born = now - timedelta(days=420)
    partners: list[dict[str, Id]] = []
    for p in range(cfg.partners):
        partner_id, client_id = new_id(rng), new_id(rng)
        rows["partners"].append((partner_id, f"Bench partner {p + 1}", born, born))
        rows["api_clients"].append((client_id, partner_id, secret_hash, born, born))
        partners.append({"partner_id": partner_id, "client_id": client_id})
    entities = []
    for e in range(cfg.entities):
        partner = partners[e % cfg.partners]
        entity_id, user_id = new_id(rng), new_id(rng)
        city, state, postal = CITIES[e % len(CITIES)]
        name = f"{rng.choice(WORDS)} {rng.choice(WORDS)} {e + 1} Inc."
        address = {
            "city": city, "country": "US", "line1": f"{e + 1} Main Street", "line2": None,
            "postal_code": postal, "state": state,
        }  # fmt: skip
        created = born + timedelta(seconds=e)
        rows["entities"].append(
            (
                entity_id, partner["partner_id"], "organization", "active",
                f"billing{e + 1}@example.com", "+15555550100", None, f"{10000000 + e}",
                dumps(address), dumps({"legal_name": name}), created, created,
            )
        )  # fmt: skip
        rows["entity_users"].append(
            (
                user_id, entity_id, f"owner{e + 1}", rng.choice(FIRST_NAMES),
                rng.choice(LAST_NAMES), f"owner{e + 1}@example.com", new_id(rng), "active",
                created, created,
            )
        )  # fmt: skip
        issuer = {
            "entity": {
                "type": "organization", "email": f"billing{e + 1}@example.com",
                "phone": "+15555550100", "website": None, "tax_id": f"{10000000 + e}",
                "registration_number": None, "registration_authority": None, "name": name,
            },
            "entity_address": {k: address[k] for k in sorted(address)},
        }  # fmt: skip
        counterparts = []
        for c in range(5):
            cp_id, address_id = new_id(rng), new_id(rng)
            individual = c == 4
            first = rng.choice(FIRST_NAMES) if individual else None
            last = rng.choice(LAST_NAMES) if individual else None
            legal = None if individual else f"{rng.choice(WORDS)} {rng.choice(WORDS)} LLC"
            cp_name = f"{first} {last}" if individual else str(legal)
            cp_city, cp_state, cp_postal = CITIES[(e + c) % len(CITIES)]
            rows["counterparts"].append(
                (
                    cp_id, entity_id, "individual" if individual else "organization", True,
                    False, legal, first, last, f"ap{c}@customer{e + 1}.example.com", None,
                    "en", True, address_id, cp_name, created, created,
                )
            )  # fmt: skip
            rows["counterpart_addresses"].append(
                (
                    address_id, cp_id, f"{c + 1} Market Street", cp_city, cp_state,
                    cp_postal, "US", created, created,
                )
            )  # fmt: skip
            document = {
                "tax_id": None,
                "external_reference": None,
                "billing_address": {
                    "id": dashed(address_id), "city": cp_city, "country": "US",
                    "line1": f"{c + 1} Market Street", "line2": None, "postal_code": cp_postal,
                    "state": cp_state,
                },
                "shipping_address": None,
            }  # fmt: skip
            counterparts.append(
                Counterpart(
                    cp_id,
                    "individual" if individual else "organization",
                    cp_name,
                    first,
                    last,
                    address_id,
                    dumps(document),
                )
            )
        business_id, offer_id = new_id(rng), new_id(rng)
        onboarded = created + timedelta(days=10)
        rows["financing_businesses"].append(
            (
                business_id, entity_id, partner["partner_id"], WCBusinessStatus.ONBOARDED, name,
                f"{12 + e % 80:02d}-{3456789 + e:07d}"[:10], dumps(address),
                dumps({"first_name": "Ada", "last_name": "Lovelace"}), "021000021",
                f"{100000000 + e}", onboarded, created, onboarded,
            )
        )  # fmt: skip
        entity_plans = []
        for position, plan in enumerate(plans):
            plan_id = new_id(rng)
            entity_plans.append((plan_id, plan))
            rows["financing_pricing_plans"].append(
                (
                    plan_id, offer_id, position, plan.repayment_type,
                    plan.advance_rate_percentage, plan.fee_percentage,
                    plan.repayment_duration_days, plan.instalments, plan.grace_days,
                )
            )  # fmt: skip
        entities.append(
            EntityInfo(
                entity_id,
                partner["partner_id"],
                user_id,
                name,
                dumps(issuer),
                counterparts,
                business_id,
                offer_id,
                entity_plans,
                hot=False,
            )
        )
    # The hot entities: spread over the partners (entity e belongs to partner e % partners).
    hot = entities[: min(cfg.hot_entities, len(entities))]
    for info in hot:
        info.hot = True
    cold = entities[len(hot) :] or hot
    return World(now, partners, entities, hot, cold, rows, policy)


def offer_rows(world: World, totals: Totals) -> list[Row]:
    """The entities' offers (loaded last): status and amounts follow their invoices."""
    rows = []
    cap = 50_000_000
    for info in world.entities:
        reserved, owed = totals.reserved[info.id], totals.owed[info.id]
        # Room to spare on every line, in whole thousands of dollars.
        total = max(cap, -(-(reserved + owed) * 3 // 2 // 100_000) * 100_000)
        created = world.now - timedelta(days=400)
        accepted = created + timedelta(days=1)
        troubled = totals.troubled[info.id]
        status = (
            WCOfferStatus.DEFAULTED
            if S.DEFAULTED in troubled
            else WCOfferStatus.LATE
            if troubled
            else WCOfferStatus.CURRENT
        )
        rows.append(
            (
                info.offer_id, info.business_id, info.id, status, CURRENCY, total, reserved,
                owed, created + timedelta(days=14), accepted, accepted, created, accepted,
            )
        )  # fmt: skip
    return rows


# --- the chunks: receivables, requests, financing invoices and what hangs off them ----------


@dataclass
class Totals:
    """What the offers must show, summed over chunks."""

    reserved: dict[Id, int] = field(default_factory=lambda: defaultdict(int))
    owed: dict[Id, int] = field(default_factory=lambda: defaultdict(int))
    troubled: dict[Id, set[WCInvoiceStatus]] = field(default_factory=lambda: defaultdict(set))

    def add(self, other: Totals) -> None:
        for key, value in other.reserved.items():
            self.reserved[key] += value
        for key, value in other.owed.items():
            self.owed[key] += value
        for key, statuses in other.troubled.items():
            self.troubled[key] |= statuses


@dataclass
class Chunk:
    index: int
    invoices: int = 0
    rows: dict[str, list[Row]] = field(default_factory=lambda: defaultdict(list))
    totals: Totals = field(default_factory=Totals)
    samples: dict[Id, list[tuple[str, str, WCInvoiceStatus]]] = field(
        default_factory=lambda: defaultdict(list)
    )


class LineCatalog:
    """Priced invoice bodies (1 to 3 lines) computed once with Fundline's own arithmetic, kept
    as JSON split where each line's id goes."""

    def __init__(self, rng: random.Random, size: int = 256) -> None:
        self.bodies: list[tuple[list[str], int, int, int]] = []
        for _ in range(size):
            lines, priced = [], []
            for _ in range(rng.choice((1, 1, 2, 3))):
                price = rng.randrange(5_000, 900_000)
                quantity = Decimal(rng.choice(("1", "2", "3", "5", "10", "2.5")))
                rate = rng.choice((0, 500, 800, 1000))
                amounts = line_amounts(price, quantity, rate)
                priced.append((rate, amounts))
                lines.append(
                    {
                        "id": "@ID@", "name": rng.choice(PRODUCTS), "description": None,
                        "external_reference": None, "ledger_account_id": None,
                        "measure_unit": None, "smallest_amount": None, "type": "service",
                        "price": price, "quantity": str(quantity), "tax_rate_value": rate,
                        "tax_rate_name": None, "total_before_vat": amounts.total_before_vat,
                        "vat_amount": amounts.vat_amount,
                        "total_after_vat": amounts.total_after_vat,
                        "price_after_vat": amounts.price_after_vat,
                    }
                )  # fmt: skip
            totals = document_totals(priced)
            self.bodies.append(
                (
                    dumps(lines).split("@ID@"),
                    totals.subtotal,
                    totals.total_vat_amount,
                    totals.total_amount,
                )
            )

    def pick(self, rng: random.Random) -> tuple[str, int, int, int]:
        parts, subtotal, vat, total = self.bodies[rng.randrange(len(self.bodies))]
        text = parts[0]
        for part in parts[1:]:
            text += dashed(new_id(rng)) + part
        return text, subtotal, vat, total


def _between(rng: random.Random, start: datetime, days: tuple[float, float]) -> datetime:
    return start - timedelta(seconds=rng.uniform(days[0] * 86400, days[1] * 86400))


def _receivable(
    chunk: Chunk,
    rng: random.Random,
    catalog: LineCatalog,
    info: EntityInfo,
    *,
    number: int,
    issued: datetime,
    terms_days: int,
    paid_at: datetime | None,
) -> tuple[Id, Counterpart, str, date, int, str | None]:
    """One issued (or paid) invoice; returns what a financing invoice copies from it."""
    rid = new_id(rng)
    cp = info.counterparts[rng.randrange(len(info.counterparts))]
    items, subtotal, vat, total = catalog.pick(rng)
    document_id = f"INV-{number:08d}"
    due = (issued + timedelta(days=terms_days)).date()
    memo = f"Services, order {number}" if number % 3 == 0 else None
    created = issued - timedelta(hours=rng.uniform(1, 48))
    terms = f'{{"name":"Net {terms_days}","term_final":{{"number_of_days":{terms_days}}}}}'
    chunk.rows["receivables"].append(
        (
            rid, info.id, "invoice",
            ReceivablesStatus.PAID if paid_at else ReceivablesStatus.ISSUED, document_id, CURRENCY,
            info.user_id, cp.id, cp.name, cp.type, cp.billing_address_id, cp.document,
            info.issuer, items, subtotal, vat, total, total if paid_at else 0, terms,
            issued, due, paid_at if paid_at else None, "en",
            dumps({"memo": memo}) if memo else "{}", created,
            paid_at if paid_at else issued,
        )
    )  # fmt: skip
    return rid, cp, document_id, due, total, memo


@dataclass(frozen=True)
class Timeline:
    """When things happened to one financing invoice (naive UTC)."""

    created: datetime
    issued: datetime  # its receivable's issue date
    terms_days: int
    confirmed: datetime
    funded: datetime
    paid: datetime | None  # PAID: when the receivable was paid


def _timeline(
    rng: random.Random, status: WCInvoiceStatus, plan: PlanPolicy, world: World
) -> Timeline:
    """Dates that agree with ``status`` under the servicing rules (drawn until they do)."""
    now, today = world.now, world.now.date()
    late_limit = today - timedelta(days=world.policy.default_after_days_late)
    for _ in range(1000):
        created = _between(rng, now, AGE_DAYS[status])
        terms_days = rng.choice(TERMS_DAYS)
        # Eligible when requested: due at least 8 days after the request.
        issued = created - timedelta(days=rng.uniform(0, terms_days - 8))
        confirmed = created + timedelta(minutes=rng.uniform(1, 50))
        funded = confirmed + timedelta(hours=rng.uniform(1, 48))
        timeline = Timeline(created, issued, terms_days, confirmed, funded, None)
        if status in (S.NEW, S.REJECTED):
            if confirmed < now:
                return timeline
            continue
        if funded >= now - timedelta(hours=1):
            continue
        due = (issued + timedelta(days=terms_days)).date()
        first = due_dates(plan, funded_on=funded.date(), invoice_due_date=due)[0]
        if status == S.PAID:
            paid = funded + timedelta(days=rng.uniform(1, 90))
            if paid < now:
                return Timeline(created, issued, terms_days, confirmed, funded, paid)
        elif (
            (status == S.FUNDED and first >= today)
            or (status == S.LATE and late_limit <= first < today)
            or (status == S.DEFAULTED and first < late_limit)
        ):
            return timeline
    raise RuntimeError(f"no timeline for a {status} invoice on a {plan.repayment_type} plan")


def _history(
    status: WCInvoiceStatus, t: Timeline, first_due: date | None, world: World
) -> list[tuple[WCInvoiceStatus | None, WCInvoiceStatus, str, datetime]]:
    """The status history rows servicing writes on the way to ``status``."""
    rows: list[tuple[WCInvoiceStatus | None, WCInvoiceStatus, str, datetime]] = [
        (None, S.DRAFT, "financing requested", t.created),
        (S.DRAFT, S.NEW, "confirmed by the business", t.confirmed),
    ]
    if status == S.NEW:
        return rows
    if status == S.REJECTED:
        closed = t.confirmed + timedelta(hours=12)
        return [*rows, (S.NEW, S.REJECTED, "rejected by the lender", closed)]
    rows.append((S.NEW, S.NEW, "approved: approved by the lender", _approved(t)))
    rows.append((S.NEW, S.FUNDED, "funded by the lender", t.funded))
    if status == S.PAID:
        assert t.paid is not None
        return [*rows, (S.FUNDED, S.PAID, "the receivable was paid", t.paid)]
    if status in (S.LATE, S.DEFAULTED):
        assert first_due is not None
        late = datetime.combine(first_due + timedelta(days=1), datetime.min.time())
        rows.append((S.FUNDED, S.LATE, "an instalment fell due unpaid", late))
        if status == S.DEFAULTED:
            days = world.policy.default_after_days_late
            rows.append(
                (
                    S.LATE, S.DEFAULTED, f"an instalment unpaid more than {days} days",
                    late + timedelta(days=days + 1),
                )
            )  # fmt: skip
    return rows


def _approved(t: Timeline) -> datetime:
    """When the lender approved a funded invoice: shortly before funding it."""
    return t.funded - timedelta(minutes=5)


def generate_chunk(world: World, cfg: Config, index: int, start: int, count: int) -> Chunk:
    """``count`` financing invoices from number ``start`` on (a pure function of its input)."""
    rng = random.Random(f"{cfg.seed}:chunk:{index}")
    catalog = LineCatalog(random.Random(f"{cfg.seed}:lines"))
    chunk = Chunk(index)
    rows, totals = chunk.rows, chunk.totals
    mixes = {
        hot: ([s for s, _ in mix], [w for _, w in mix])
        for hot, mix in ((True, HEALTHY_MIX), (False, STATUS_MIX))
    }
    number = start
    while chunk.invoices < count:
        hot = rng.random() < cfg.hot_share
        pool = world.hot if hot else world.cold
        info = pool[rng.randrange(len(pool))]
        statuses, weights = mixes[info.hot]
        status = rng.choices(statuses, weights)[0]
        size = min(rng.choice((1, 1, 1, 2, 2, 3, 4)), count - chunk.invoices)
        plan_id, plan = info.plans[rng.randrange(len(info.plans))]
        request_id = new_id(rng)
        request_rows = []
        for k in range(size):
            number += 1
            t = _timeline(rng, status, plan, world)
            if k == 0:
                request_at = t.created
                request_rows.append(
                    (
                        request_id, info.id, info.partner_id, FinancingRequestStatus.CONFIRMED,
                        request_at + timedelta(hours=1), request_at, t.confirmed,
                    )
                )  # fmt: skip
            fid = new_id(rng)
            rid, cp, document_id, due, total, memo = _receivable(
                chunk,
                rng,
                catalog,
                info,
                number=number,
                issued=t.issued,
                terms_days=t.terms_days,
                paid_at=t.paid,
            )
            quote = pricing.price(
                total,
                advance_rate_percentage=plan.advance_rate_percentage,
                fee_percentage=plan.fee_percentage,
            )
            schedule: Sequence[Any] = ()
            if status in FUNDED_PATH:
                schedule = build_schedule(
                    plan,
                    repayment_amount=quote.repayment_amount,
                    fee_amount=quote.fee_amount,
                    funded_on=t.funded.date(),
                    invoice_due_date=due,
                )
            history = _history(status, t, schedule[0].due_date if schedule else None, world)
            repaid = quote.repayment_amount if status == S.PAID else 0
            closed = (
                t.paid if status == S.PAID else history[-1][3] if status == S.REJECTED else None
            )
            entries = []
            if schedule:
                entries += [
                    ("disbursement", "advance paid out", quote.principal_amount, "cash", t.funded),
                    ("fee", "financing fee", quote.fee_amount, "fee_income", t.funded),
                ]
            if status == S.PAID:
                assert t.paid is not None
                entries.append(("repayment", "the receivable was paid", -repaid, "cash", t.paid))
            if status == S.DEFAULTED and rng.random() < 0.5:
                # Half the defaulted ones are written off a month after defaulting.
                closed = history[-1][3] + timedelta(days=30)
                written = f"written off {quote.repayment_amount}: written off by the lender"
                history.append((S.DEFAULTED, S.DEFAULTED, written, closed))
                entries.append(
                    (
                        "write_off", "written off by the lender", -quote.repayment_amount,
                        "credit_losses", closed,
                    )
                )  # fmt: skip
            for before, after, cause, at in history:
                rows["financing_status_history"].append(
                    (new_id(rng), fid, before, after, cause, at)
                )
            for item in schedule:
                rows["financing_instalments"].append(
                    (
                        new_id(rng), fid, item.sequence, item.due_date, item.amount,
                        item.fee_amount, item.principal_amount, item.amount if repaid else 0,
                    )
                )  # fmt: skip
            for kind, memo_text, amount, counter, at in entries:
                if amount:
                    entry_id = new_id(rng)
                    rows["ledger_entries"].append(
                        (entry_id, info.id, fid, kind, CURRENCY, f"{document_id}: {memo_text}", at)
                    )
                    rows["ledger_postings"].append(
                        (new_id(rng), entry_id, fid, "financed_receivable", amount, CURRENCY)
                    )
                    rows["ledger_postings"].append(
                        (new_id(rng), entry_id, fid, counter, -amount, CURRENCY)
                    )
            if status == S.NEW:
                totals.reserved[info.id] += quote.requested_amount
            elif status in (S.FUNDED, S.LATE) or (status == S.DEFAULTED and closed is None):
                totals.owed[info.id] += quote.repayment_amount - repaid
            if status in (S.LATE, S.DEFAULTED):
                totals.troubled[info.id].add(status)
            individual = cp.type == "individual"
            rows["financing_invoices"].append(
                (
                    fid, info.partner_id, info.id, request_id, info.offer_id, plan_id, rid,
                    rid if status in LIVE_STATUSES else None, "receivable", status, document_id,
                    t.issued.date(), due, total, CURRENCY, memo,
                    "INDIVIDUAL" if individual else "BUSINESS",
                    None if individual else cp.name, cp.first_name, cp.last_name,
                    plan.advance_rate_percentage, plan.fee_percentage, quote.requested_amount,
                    quote.fee_amount, quote.principal_amount, quote.repayment_amount,
                    schedule[0].due_date if schedule else None,
                    schedule[0].due_date if schedule and not repaid else None, repaid, t.confirmed,
                    _approved(t) if schedule else None, t.funded if schedule else None, closed,
                    t.created, history[-1][3],
                )
            )  # fmt: skip
            if info.hot and len(chunk.samples[info.id]) < 5:
                chunk.samples[info.id].append((dashed(fid), dashed(rid), status))
            chunk.invoices += 1
        rows["financing_requests"] += request_rows
    return chunk


def generate_spare(world: World, cfg: Config, index: int, entities: Sequence[EntityInfo]) -> Chunk:
    """Issued receivables nobody asked to finance yet: what POST /v1/financing_invoices uses."""
    rng = random.Random(f"{cfg.seed}:spare:{index}")
    catalog = LineCatalog(random.Random(f"{cfg.seed}:lines"))
    chunk = Chunk(index)
    number = 900_000_000 + index * 1_000_000
    for info in entities:
        for _ in range(cfg.spare):
            number += 1
            issued = world.now - timedelta(days=rng.uniform(0, 3))
            _receivable(
                chunk,
                rng,
                catalog,
                info,
                number=number,
                issued=issued,
                terms_days=90,
                paid_at=None,
            )
            chunk.invoices += 1
    return chunk
