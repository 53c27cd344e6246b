"""What the fake Kanmon remembers, and Kanmon's operations on it as the adapter calls them.

Everything is kept as Kanmon's wire objects (camelCase dicts), in memory, per instance; lists
come back in the order the objects were made. Errors are Kanmon's codes and statuses from the
spec. What Kanmon and the business's user do in Kanmon's own widget is in ``fake_widget.py``;
an invoice's money in ``fake_terms.py``.
"""

from __future__ import annotations

import copy
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fundline.kit import clock
from fundline.lending.kanmon import fake_spec, fake_terms
from fundline.lending.kanmon.fake_spec import KanmonError, bad_request

JSON = dict[str, Any]
Answer = tuple[int, Any]

_SCHEMAS = fake_spec.load().document["components"]["schemas"]
INVOICE_STATUSES: tuple[str, ...] = tuple(_SCHEMAS["InvoiceStatus"]["enum"])
LOAN_STATUSES: tuple[str, ...] = tuple(_SCHEMAS["LoanStatus"]["enum"])
# An invoice in these statuses has given back what it drew on the limit.
RELEASED = frozenset({"INVOICE_PAID_IN_FULL", "REJECTED", "INVOICE_RETURNED"})
FINANCING = ("INVOICE_FINANCING", "ACCOUNTS_PAYABLE_FINANCING")
FLOWS = {
    "SESSION_INVOICE_FLOW": "INVOICE_FINANCING",
    "SESSION_INVOICE_FLOW_WITH_INVOICE_FILE": "INVOICE_FINANCING",
    "SESSION_ACCOUNTS_PAYABLE_INVOICE_FLOW": "ACCOUNTS_PAYABLE_FINANCING",
    "SESSION_ACCOUNTS_PAYABLE_INVOICE_FLOW_WITH_INVOICE_FILE": "ACCOUNTS_PAYABLE_FINANCING",
}
NO_PRODUCT = {
    "INVOICE_FINANCING": "BusinessHasNoInvoiceFinancingProductException",
    "ACCOUNTS_PAYABLE_FINANCING": "BusinessHasNoAccountsPayableFinancingProductException",
}
PARTY_FIELDS = tuple(
    role + part
    for role in ("payor", "payee")
    for part in ("Email", "BusinessName", "FirstName", "MiddleName", "LastName")
)
# Optional, and left out rather than null when unknown: the spec marks them nullable, but on an
# enum without null or around a $ref, where OAS 3.0.3 would still refuse a null.
OPTIONAL_PARTY_FIELDS = ("payorType", "payorAddress", "payeeType", "payeeAddress")
MAX_LIMIT = 100  # Kanmon: "Defaults to 100, which is the max" (more is served as 100)


@dataclass(frozen=True)
class Call:
    """One Kanmon request, checked: path parameters, the query coerced, the JSON body."""

    path: dict[str, str]
    query: dict[str, Any]
    body: Any


def wire_time(moment: datetime) -> str:
    """Kanmon's timestamps: UTC, milliseconds, ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def instant(value: Any, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise bad_request(f"{what} must be an ISO 8601 timestamp, not {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class KanmonState:
    """Kanmon's objects and rules. ``now`` is Kanmon's clock (Fundline's by default)."""

    def __init__(self, *, now: Callable[[], datetime] = clock.now) -> None:
        self._now = now
        self.reset()

    def reset(self) -> None:
        """Forget every object."""
        self.businesses: dict[str, JSON] = {}
        self.users: dict[str, JSON] = {}
        self.connect_tokens: dict[str, str] = {}  # token → user id
        self.offers: dict[str, JSON] = {}
        self.issued_products: dict[str, JSON] = {}
        self.invoices: dict[str, JSON] = {}
        self.sessions: dict[str, JSON] = {}  # token → the session and its invoices
        self._drawn: dict[str, int] = {}  # invoice id → what it holds of the limit now

    def _timestamp(self) -> str:
        return wire_time(self._now())

    def error_body(self, error: KanmonError) -> JSON:
        return {"errorCode": error.code, "message": error.message, "timestamp": self._timestamp()}

    def operations(self) -> dict[str, Callable[[Call], Answer]]:
        """Kanmon's operations the fake plays, by operationId."""
        return {
            "createBusiness": self.create_business,
            "getBusiness": lambda call: (200, self._out(self._business_for(call))),
            "getAllBusinesses": self.get_all_businesses,
            "updateBusiness": self.update_business,
            "createUser": self.create_user,
            "getUser": self.get_user,
            "getAllUsers": self.get_all_users,
            "createConnectToken": self.create_connect_token,
            "createEmbeddedSession": self.create_embedded_session,
            "getAllOffers": self.get_all_offers,
            "getOfferById": lambda call: (200, self._out(self._offer(call.path["id"]))),
            "getAllIssuedProducts": self.get_all_issued_products,
            "getIssuedProductById": lambda call: (200, self._out(self._product(call.path["id"]))),
            "getAllInvoices": self.get_all_invoices,
            "getInvoice": self.get_invoice,
            "financeInvoice": self.finance_invoice,
        }

    # --- reading --------------------------------------------------------------------------

    def _out(self, record: JSON) -> JSON:
        """A copy to send; ``platformBusinessId`` as the business has it now."""
        out = copy.deepcopy(record)
        if "businessId" in out:
            out["platformBusinessId"] = self.businesses[out["businessId"]]["platformBusinessId"]
        return out

    def _page(
        self,
        records: Iterable[JSON],
        query: dict[str, Any],
        key: str,
        filters: dict[str, Callable[[JSON], Any]],
    ) -> Answer:
        """Kanmon's list answer: comma-list filters, the createdAt window, offset/limit."""
        chosen = list(records)
        for name, value_of in filters.items():
            if name in query:
                wanted = {item.strip() for item in str(query[name]).split(",")}
                chosen = [r for r in chosen if value_of(r) in wanted]
        if "createdAtStart" in query:
            start = instant(query["createdAtStart"], "createdAtStart")
            chosen = [r for r in chosen if instant(r["createdAt"], "createdAt") >= start]
        if "createdAtEnd" in query:
            end = instant(query["createdAtEnd"], "createdAtEnd")
            chosen = [r for r in chosen if instant(r["createdAt"], "createdAt") <= end]
        offset, limit = query.get("offset", 0), query.get("limit", MAX_LIMIT)
        if not isinstance(offset, int) or offset < 0:
            raise bad_request(f"offset must be a whole number, 0 or more: {offset!r}")
        if not isinstance(limit, int) or limit < 1:
            raise bad_request(f"limit must be a whole number, 1 or more: {limit!r}")
        limit = min(limit, MAX_LIMIT)
        page = [self._out(r) for r in chosen[offset : offset + limit]]
        pagination = {"limit": limit, "offset": offset, "totalCount": len(chosen)}
        return 200, {key: page, "pagination": pagination}

    def _platform_business(self, record: JSON) -> Any:
        return self.businesses[record["businessId"]]["platformBusinessId"]

    def _business(self, business_id: str) -> JSON:
        if business_id not in self.businesses:
            raise KanmonError(404, "BusinessNotFoundException", f"No business {business_id}")
        return self.businesses[business_id]

    def _business_for(self, call: Call) -> JSON:
        wanted = call.path["id"]
        if call.query.get("idType") == "PLATFORM":
            for business in self.businesses.values():
                if business["platformBusinessId"] == wanted:
                    return business
            raise KanmonError(404, "BusinessNotFoundException", f"No business {wanted}")
        return self._business(wanted)

    def _business_of_body(self, body: JSON) -> JSON:
        """The business a body names by ``businessId`` or ``platformBusinessId``."""
        if "businessId" in body:
            return self._business(body["businessId"])
        if "platformBusinessId" in body:
            return self._business_for(
                Call({"id": body["platformBusinessId"]}, {"idType": "PLATFORM"}, None)
            )
        raise bad_request("Either businessId or platformBusinessId is required")

    def _offer(self, offer_id: str) -> JSON:
        if offer_id not in self.offers:
            raise KanmonError(404, "OfferNotFoundException", f"No offer {offer_id}")
        return self.offers[offer_id]

    def _product(self, product_id: str) -> JSON:
        if product_id not in self.issued_products:
            raise KanmonError(404, "IssuedProductNotFoundException", f"No product {product_id}")
        return self.issued_products[product_id]

    def _invoice(self, invoice_id: str) -> JSON:
        if invoice_id not in self.invoices:
            raise KanmonError(404, "InvoiceNotFoundException", f"No invoice {invoice_id}")
        return self.invoices[invoice_id]

    # --- businesses and users ---------------------------------------------------------------

    def create_business(self, call: Call) -> Answer:
        body = call.body
        if any(
            b["platformBusinessId"] == body["platformBusinessId"] for b in self.businesses.values()
        ):
            raise KanmonError(
                409,
                "BusinessAlreadyExistsException",
                f"A business with platformBusinessId {body['platformBusinessId']} exists",
            )
        now = self._timestamp()
        business: JSON = {"id": str(uuid.uuid4()), "platformBusinessId": body["platformBusinessId"]}
        for name in ("name", "ein", "phoneNumber", "website", "isSoleProprietorship"):
            business[name] = body.get(name)
        business["metadata"] = body.get("metadata", {})
        # Left out until known, not null: see OPTIONAL_PARTY_FIELDS.
        for name in ("address", "customInitializationName"):
            if name in body:
                business[name] = body[name]
        business.update(createdAt=now, updatedAt=now)
        self.businesses[business["id"]] = business
        return 201, self._out(business)

    def get_all_businesses(self, call: Call) -> Answer:
        filters = {
            "ids": lambda b: b["id"],
            "platformBusinessIds": lambda b: b["platformBusinessId"],
        }
        return self._page(self.businesses.values(), call.query, "businesses", filters)

    def update_business(self, call: Call) -> Answer:
        business = self._business_for(call)
        platform_id = call.body.get("platformBusinessId", business["platformBusinessId"])
        if any(
            b["platformBusinessId"] == platform_id and b is not business
            for b in self.businesses.values()
        ):
            raise KanmonError(
                409, "BusinessAlreadyExistsException", f"platformBusinessId {platform_id} is taken"
            )
        # The spec types customInitializationName as an object here and a string on Business:
        # not kept, so the business stays what the spec says it is.
        changes = {k: v for k, v in call.body.items() if k != "customInitializationName"}
        business.update(changes, updatedAt=self._timestamp())
        return 200, self._out(business)

    def create_user(self, call: Call) -> Answer:
        body = call.body
        business = self._business_of_body(body)
        others = list(self.users.values())
        if any(u["platformUserId"] == body["platformUserId"] for u in others):
            raise KanmonError(
                409,
                "UserAlreadyExistsWithPlatformUserIdException",
                f"A user with platformUserId {body['platformUserId']} exists",
            )
        email = body.get("email")
        if email and any((u["email"] or "").lower() == email.lower() for u in others):
            raise KanmonError(409, "UserAlreadyExistsWithEmailException", f"{email} is taken")
        roles = body.get("roles", [])
        if "PRIMARY_OWNER" in roles and any(
            u["businessId"] == business["id"] and "PRIMARY_OWNER" in u["roles"] for u in others
        ):
            raise KanmonError(
                409,
                "PrimaryBusinessOwnerAlreadyExistsForBusinessException",
                f"Business {business['id']} has a primary owner",
            )
        now = self._timestamp()
        user: JSON = {
            "id": str(uuid.uuid4()),
            "platformUserId": body["platformUserId"],
            "businessId": business["id"],
            "platformBusinessId": business["platformBusinessId"],
            **{k: body.get(k) for k in ("email", "firstName", "lastName", "phoneNumber")},
            "address": body.get("address"),
            "roles": roles,
            # The spec types it as an object on User (a boolean in the request): null is the
            # one value both readings allow.
            "isUsCitizen": None,
            "metadata": body.get("metadata", {}),
            "createdAt": now,
            "updatedAt": now,
        }
        self.users[user["id"]] = user
        return 201, self._out(user)

    def _user(self, wanted: str, *, platform: bool) -> JSON:
        for user in self.users.values():
            if user["platformUserId" if platform else "id"] == wanted:
                return user
        raise KanmonError(404, "UserNotFoundException", f"No user {wanted}")

    def get_user(self, call: Call) -> Answer:
        platform = call.query.get("idType") == "PLATFORM"
        return 200, self._out(self._user(call.path["id"], platform=platform))

    def get_all_users(self, call: Call) -> Answer:
        filters: dict[str, Callable[[JSON], Any]] = {
            "ids": lambda u: u["id"],
            "platformUserIds": lambda u: u["platformUserId"],
            "platformBusinessIds": self._platform_business,
            "businessIds": lambda u: u["businessId"],
        }
        return self._page(self.users.values(), call.query, "users", filters)

    def create_connect_token(self, call: Call) -> Answer:
        if "userId" in call.body:
            user = self._user(call.body["userId"], platform=False)
        elif "platformUserId" in call.body:
            user = self._user(call.body["platformUserId"], platform=True)
        else:
            raise bad_request("Either userId or platformUserId is required")
        token = secrets.token_urlsafe(24)
        self.connect_tokens[token] = user["id"]
        return 201, {"connectToken": token}

    # --- sessions, offers and issued products -----------------------------------------------

    def _product_of(self, business_id: str, product_type: str) -> JSON | None:
        """The business's latest issued product of that type."""
        found = [
            p
            for p in self.issued_products.values()
            if p["businessId"] == business_id and p["servicingData"]["productType"] == product_type
        ]
        return found[-1] if found else None

    def create_embedded_session(self, call: Call) -> Answer:
        business = self._business_of_body(call.body)
        data = call.body["data"]
        product_type = FLOWS[data["component"]]
        product = self._product_of(business["id"], product_type)
        if product is None:
            raise KanmonError(
                409, NO_PRODUCT[product_type], f"Business {business['id']} has no {product_type}"
            )
        for invoice in data["invoices"]:
            platform_id = invoice["platformInvoiceId"]
            if any(
                i["platformInvoiceId"] == platform_id and i["issuedProductId"] != product["id"]
                for i in self.invoices.values()
            ):
                raise KanmonError(
                    409,
                    "PlatformInvoiceIdAlreadyExistsForAnotherIssuedProductException",
                    f"Invoice {platform_id} belongs to another issued product",
                )
        token = secrets.token_urlsafe(24)
        self.sessions[token] = {
            "sessionToken": token,
            "businessId": business["id"],
            "issuedProductId": product["id"],
            "component": data["component"],
            "invoices": copy.deepcopy(data["invoices"]),
            "submitted": [],
            "createdAt": self._timestamp(),
        }
        return 201, {"sessionToken": token}

    def get_all_offers(self, call: Call) -> Answer:
        filters: dict[str, Callable[[JSON], Any]] = {
            "ids": lambda o: o["id"],
            "platformBusinessIds": self._platform_business,
            "businessIds": lambda o: o["businessId"],
        }
        return self._page(self.offers.values(), call.query, "offers", filters)

    def get_all_issued_products(self, call: Call) -> Answer:
        filters: dict[str, Callable[[JSON], Any]] = {
            "offerIds": lambda p: p["offerId"],
            "ids": lambda p: p["id"],
            "platformBusinessIds": self._platform_business,
            "businessIds": lambda p: p["businessId"],
        }
        return self._page(self.issued_products.values(), call.query, "issuedProducts", filters)

    # --- invoices ---------------------------------------------------------------------------

    def get_all_invoices(self, call: Call) -> Answer:
        def business_of(invoice: JSON) -> Any:
            return self.issued_products[invoice["issuedProductId"]]["businessId"]

        filters: dict[str, Callable[[JSON], Any]] = {
            "statuses": lambda i: i["status"],
            "ids": lambda i: i["id"],
            "platformBusinessIds": lambda i: self.businesses[business_of(i)]["platformBusinessId"],
            "businessIds": business_of,
            "platformInvoiceIds": lambda i: i["platformInvoiceId"],
        }
        return self._page(self.invoices.values(), call.query, "invoices", filters)

    def get_invoice(self, call: Call) -> Answer:
        wanted = call.path["id"]
        if call.query.get("idType") == "PLATFORM":
            for invoice in self.invoices.values():
                if invoice["platformInvoiceId"] == wanted:
                    return 200, self._out(invoice)
            raise KanmonError(404, "InvoiceNotFoundException", f"No invoice {wanted}")
        return 200, self._out(self._invoice(wanted))

    def finance_invoice(self, call: Call) -> Answer:
        body = call.body
        product = self._product(body["issuedProductId"])
        product_type = product["servicingData"]["productType"]
        if product_type not in FINANCING:
            raise KanmonError(409, "IncorrectProductTypeException", f"{product_type} finances none")
        party = "payeeType" if product_type == "ACCOUNTS_PAYABLE_FINANCING" else "payorType"
        if party not in body:
            raise bad_request(f"{party} is required for {product_type}")
        plan = self._plan(product, body["invoicePaymentPlanId"])
        terms = self._terms(plan, body, body["amountRequestedForFinancingCents"])
        self._draw(product, terms["amountRequestedForFinancingCents"])
        return 201, self._out(self._new_invoice(product, body, terms))

    def _plan(self, product: JSON, plan_id: str | None) -> JSON:
        plans: list[JSON] = product["servicingData"]["pricingPlans"]
        for plan in plans:
            if plan_id is None or plan["id"] == plan_id:
                return plan
        raise KanmonError(404, "InvoicePaymentPlanNotFoundException", f"No plan {plan_id}")

    def _terms(self, plan: JSON, fields: JSON, requested: Any) -> JSON:
        platform_id = fields["platformInvoiceId"]
        if any(i["platformInvoiceId"] == platform_id for i in self.invoices.values()):
            raise KanmonError(
                400, "PlatformInvoiceIdAlreadyExistsException", f"Invoice {platform_id} exists"
            )
        return fake_terms.terms(plan, fields, requested, today=self._now().astimezone(UTC).date())

    def _draw(self, product: JSON, amount: int, *, any_status: bool = False) -> None:
        if not any_status and product["loanStatus"] != "CURRENT":
            raise KanmonError(
                409,
                "IssuedProductStatusNotCurrentException",
                f"Issued product {product['id']} is {product['loanStatus']}",
            )
        servicing = product["servicingData"]
        if amount > servicing["availableLimitCents"]:
            raise KanmonError(
                409,
                "InsufficientCreditLimitException",
                f"{amount} cents asked, {servicing['availableLimitCents']} available",
            )
        servicing["availableLimitCents"] -= amount
        product["updatedAt"] = self._timestamp()

    def _new_invoice(self, product: JSON, fields: JSON, terms: JSON) -> JSON:
        now = self._timestamp()
        invoice: JSON = {
            "id": str(uuid.uuid4()),
            "platformInvoiceId": fields["platformInvoiceId"],
            "platformInvoiceNumber": fields.get("platformInvoiceNumber"),
            "invoiceAmountCents": fake_terms.cents(
                fields["invoiceAmountCents"], "invoiceAmountCents"
            ),
            "invoiceDueDate": fields["invoiceDueDate"],
            "invoiceIssuedDate": fields.get("invoiceIssuedDate"),
            **{name: fields.get(name) for name in PARTY_FIELDS},
            **{name: fields[name] for name in OPTIONAL_PARTY_FIELDS if name in fields},
            "status": "INVOICE_CREATED",
            "issuedProductId": product["id"],
            **terms,
            "createdAt": now,
            "updatedAt": now,
        }
        self.invoices[invoice["id"]] = invoice
        self._drawn[invoice["id"]] = terms["amountRequestedForFinancingCents"]
        return invoice
