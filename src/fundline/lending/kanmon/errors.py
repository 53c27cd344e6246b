"""Kanmon's refusals, and what a partner sees for each.

Kanmon answers every error with ``{"errorCode", "message", "timestamp"}``. A 4xx becomes a
``KanmonError``; ``to_fundline_error`` turns it into the Fundline error a partner gets, from
``ERRORS``: one row per ``errorCode`` Kanmon's Public V2 spec declares (the wire value, which for
two schemas differs from the schema's name: ``CheckingAccountRequiredException`` sends
``CheckingAccountMustPresentException`` and ``InvoicePaymentPlanNotFoundException`` sends
``InvalidInvoicePaymentPlanException``).

The rules behind the table:

- The partner can do something about it (onboard first, accept an offer, pick another invoice):
  a 409 or 422 saying what. 409 where an object's state is in the way, as the built-in lender
  answers an ineligible invoice; 404 only where the thing asked for is missing at Kanmon.
- Fundline sent something Kanmon's rules refuse whatever the partner does (a malformed body,
  an amount or plan the adapter chose, an unknown custom initialization), or Kanmon refused
  Fundline's key: a 503 saying the lender is unavailable, and an error line for the operator.
  The partner is never blamed for our bug or our credentials. Monite's shapes have no 502.
- A code not in the table is treated like the second case (and logged as unmapped).

A duplicate on create (``KanmonError.is_duplicate``) is not an error to the adapter: it looks
the existing business or user up and goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import structlog

from fundline.kit.errors import (
    BadRequest,
    Conflict,
    FundlineError,
    NotFound,
    Unavailable,
    Unprocessable,
)

log = structlog.get_logger("fundline.kanmon")

UNAVAILABLE_MESSAGE: Final = "The lender (Kanmon) is unavailable; try again later"
REFUSED_MESSAGE: Final = "The lender (Kanmon) refused the request; try again later"
DEFAULT_RETRY_AFTER: Final = 5  # seconds, when nothing better is known


class LenderUnavailable(Unavailable):
    """Kanmon could not be reached, kept failing, or refused Fundline itself: a 503 with
    ``Retry-After``, in Monite's error shape."""

    def __init__(
        self, message: str = UNAVAILABLE_MESSAGE, *, retry_after: int = DEFAULT_RETRY_AFTER
    ) -> None:
        super().__init__(message, retry_after=max(1, retry_after))


class KanmonError(Exception):
    """Kanmon's answer to a request it refused (a 4xx other than 429).

    ``message`` is Kanmon's text for the operator's logs; partners see ``to_fundline_error``'s.
    """

    def __init__(self, status: int, error_code: str, message: str, *, operation: str = "") -> None:
        super().__init__(
            f"Kanmon {operation or 'request'} answered {status} {error_code}: {message}"
        )
        self.status = status
        self.error_code = error_code
        self.message = message
        self.operation = operation

    def __repr__(self) -> str:
        return (
            f"KanmonError(status={self.status}, error_code={self.error_code!r}, "
            f"message={self.message!r}, operation={self.operation!r})"
        )

    @property
    def is_duplicate(self) -> bool:
        """A create found the business or user already there: the adapter reuses it."""
        rule = ERRORS.get(self.error_code)
        return rule is not None and rule.duplicate


@dataclass(frozen=True, slots=True)
class Rule:
    """What a partner sees for one Kanmon ``errorCode``."""

    status: int  # 400, 404, 409, 422 or 503
    message: str
    # Set when the cause is Fundline's (an adapter bug, our key): why, for the operator's log.
    operator: str | None = None
    duplicate: bool = False


_ADAPTER_BUG = "Kanmon refused a request the adapter built: an adapter bug"
_ONBOARD_FIRST = "complete the entity's financing onboarding first"

ERRORS: Final[dict[str, Rule]] = {
    # Anywhere.
    "BadRequestException": Rule(503, REFUSED_MESSAGE, _ADAPTER_BUG),
    "ForbiddenException": Rule(
        503,
        UNAVAILABLE_MESSAGE,
        "Kanmon refused Fundline's API key: check FUNDLINE_KANMON_API_KEY and "
        "FUNDLINE_KANMON_BASE_URL (a sandbox key is refused by production and the reverse)",
    ),
    "InternalServerErrorException": Rule(503, UNAVAILABLE_MESSAGE),
    # Businesses and users.
    "BusinessAlreadyExistsException": Rule(
        409, "This entity is already registered with the lender (Kanmon)", duplicate=True
    ),
    "BusinessNotFoundException": Rule(
        409, f"This entity is not registered with the lender (Kanmon) yet; {_ONBOARD_FIRST}"
    ),
    "CustomInitializationNotFoundException": Rule(503, REFUSED_MESSAGE, _ADAPTER_BUG),
    "UserNotFoundException": Rule(
        409, f"This entity's user is not registered with the lender (Kanmon) yet; {_ONBOARD_FIRST}"
    ),
    "UserAlreadyExistsWithPlatformUserIdException": Rule(
        409, "This user is already registered with the lender (Kanmon)", duplicate=True
    ),
    "UserAlreadyExistsWithEmailException": Rule(
        409, "A user with this email is already registered with the lender (Kanmon)", duplicate=True
    ),
    "PrimaryBusinessOwnerAlreadyExistsForBusinessException": Rule(
        409, "This entity already has a primary owner registered with the lender (Kanmon)"
    ),
    "PrimaryBusinessOwnerAlreadyExistsWithEmailException": Rule(
        409,
        "A primary business owner with this email is already registered with the lender "
        "(Kanmon); use another email",
    ),
    "PrimaryBusinessOwnerNotFoundException": Rule(
        409, f"This entity has no primary owner at the lender (Kanmon) yet; {_ONBOARD_FIRST}"
    ),
    "BusinessHasNoPrimaryOwnerException": Rule(
        409, f"This entity has no primary owner at the lender (Kanmon) yet; {_ONBOARD_FIRST}"
    ),
    "UnmergeableBusinessException": Rule(
        409, "The lender (Kanmon) cannot move this user into the entity's business"
    ),
    # Bank accounts and the documents underwriting reads.
    "BankAccountAlreadyExistException": Rule(
        409, "This bank account is already registered with the lender (Kanmon)"
    ),
    "BankAccountNotFoundException": Rule(
        404, "The bank account was not found at the lender (Kanmon)"
    ),
    "BusinessPlaidBankAccountNotFoundException": Rule(
        409,
        "The entity's bank account connected through Plaid was not found; connect it again "
        "during financing onboarding",
    ),
    "CheckingAccountMustPresentException": Rule(
        409,
        "The lender (Kanmon) needs a checking account for this entity; connect one during "
        "financing onboarding",
    ),
    "BankStatementsInvalidException": Rule(
        422, "The bank statements sent to the lender (Kanmon) could not be used; send valid ones"
    ),
    "PlaidAssetReportsInvalidException": Rule(
        422, "The Plaid asset reports sent to the lender (Kanmon) could not be used"
    ),
    # Offers and issued products.
    "OfferNotFoundException": Rule(404, "The financing offer was not found at the lender (Kanmon)"),
    "OfferAlreadySelectedException": Rule(
        409, "A financing offer has already been accepted for this entity"
    ),
    "OfferNotLockedException": Rule(
        409, "The financing offer has not been accepted yet; accept it before financing invoices"
    ),
    "SomeOffersHaveExpiredException": Rule(
        409, "The financing offer has expired; check the entity's financing offers again"
    ),
    "IssuedProductNotFoundException": Rule(
        409,
        "This entity has no financing product from the lender (Kanmon) yet; accept a financing "
        "offer first",
    ),
    "IssuedProductStatusNotCurrentException": Rule(
        409,
        "The entity's financing product at the lender (Kanmon) is not current (it may be past "
        "due or closed); no new invoices can be financed",
    ),
    "IncorrectProductTypeException": Rule(
        409, "The entity's financing product at the lender (Kanmon) does not cover this invoice"
    ),
    "BusinessHasNoInvoiceFinancingProductException": Rule(
        409,
        "This entity has no receivables financing product from the lender (Kanmon) yet; accept "
        "an invoice financing offer first",
    ),
    "BusinessHasNoAccountsPayableFinancingProductException": Rule(
        409,
        "This entity has no payables financing product from the lender (Kanmon) yet; accept an "
        "accounts payable financing offer first",
    ),
    "BusinessHasNoIntegratedMcaProductException": Rule(
        409, "This entity has no merchant cash advance from the lender (Kanmon)"
    ),
    # Financing an invoice.
    "InsufficientCreditLimitException": Rule(
        409, "The financing offer's available limit is less than the amount requested"
    ),
    "InvalidInvoiceDueDateException": Rule(
        409,
        "The invoice's due date does not meet the lender's rule: it must be after the issue "
        "date and at least 7 days from today",
    ),
    "PlatformInvoiceIdAlreadyExistsException": Rule(409, "This invoice has already been financed"),
    "PlatformInvoiceIdAlreadyExistsForAnotherIssuedProductException": Rule(
        409, "This invoice has already been financed under another financing product"
    ),
    "PlatformInvoiceNumberAlreadyExistsForIssuedProductException": Rule(
        409, "An invoice with this number has already been financed"
    ),
    "InvoiceNotFoundException": Rule(404, "The invoice was not found at the lender (Kanmon)"),
    # Fundline computes the amount and picks the plan; the partner chooses neither.
    "IncorrectFinancingAmountException": Rule(503, REFUSED_MESSAGE, _ADAPTER_BUG),
    "InvalidInvoicePaymentPlanException": Rule(503, REFUSED_MESSAGE, _ADAPTER_BUG),
    "DrawRequestNotFoundException": Rule(
        404, "The draw request was not found at the lender (Kanmon)"
    ),
    "PaymentOrderNotFoundException": Rule(404, "The payment was not found at the lender (Kanmon)"),
    # Merchant cash advance repayments (not a Fundline product; kept so no code is unmapped).
    "IntegratedMcaReceivableAlreadyExistsException": Rule(
        409, "This receivable is already recorded with the lender (Kanmon)"
    ),
    "NoRemainingBalanceException": Rule(409, "Nothing remains to be repaid to the lender (Kanmon)"),
    "IncorrectRepaymentAmountException": Rule(
        422, "The repayment amount does not match what the lender (Kanmon) expects"
    ),
}

# A 422 refuses stored data rather than a field of the partner's body; it is still rendered in
# Monite's validation shape, located at the body.
_BY_STATUS: Final[dict[int, type[FundlineError]]] = {
    400: BadRequest,
    404: NotFound,
    409: Conflict,
    422: Unprocessable,
    503: LenderUnavailable,
}


def to_fundline_error(exc: KanmonError) -> FundlineError:
    """The error a partner sees for Kanmon's refusal; logs one line for the operator when
    the cause is Fundline's."""
    rule = ERRORS.get(exc.error_code)
    why = "an errorCode missing from lending/kanmon/errors.py" if rule is None else rule.operator
    if why is not None:
        log.error(
            "kanmon.refused",
            operation=exc.operation,
            status=exc.status,
            error_code=exc.error_code,
            kanmon_message=exc.message,
            why=why,
        )
    return LenderUnavailable(REFUSED_MESSAGE) if rule is None else build(rule)


def build(rule: Rule) -> FundlineError:
    """The Fundline error a row declares."""
    return _BY_STATUS[rule.status](rule.message)
