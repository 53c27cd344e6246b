"""The onboarding form: its fields (labels people and scripts rely on), how a submitted form
becomes the Connect API's ``UpdateBusinessRequest``, and the API's refusals in plain words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from fundline.connect.widget import templates
from fundline.models import FinancingBusiness


@dataclass(frozen=True)
class Input:
    name: str
    label: str
    type: str = "text"
    autocomplete: str | None = None
    inputmode: str | None = None
    maxlength: int | None = None
    hint: str | None = None
    placeholder: str | None = None
    required: bool = True


@dataclass(frozen=True)
class Group:
    title: str
    fields: tuple[Input, ...]
    note: str | None = None


GROUPS = (
    Group(
        "Your business",
        (
            Input("legal_name", "Legal name", autocomplete="organization", maxlength=255),
            Input(
                "ein",
                "EIN",
                inputmode="numeric",
                maxlength=10,
                hint="Employer Identification Number, as NN-NNNNNNN.",
                placeholder="12-3456789",
            ),
        ),
    ),
    Group(
        "Business address",
        (
            Input("address.line1", "Address line 1", autocomplete="address-line1", maxlength=255),
            Input(
                "address.line2",
                "Address line 2",
                autocomplete="address-line2",
                maxlength=255,
                required=False,
            ),
            Input("address.city", "City", autocomplete="address-level2", maxlength=255),
            Input("address.state", "State", autocomplete="address-level1", maxlength=255),
            Input(
                "address.postal_code",
                "ZIP code",
                autocomplete="postal-code",
                inputmode="numeric",
                maxlength=10,
            ),
            Input(
                "address.country",
                "Country",
                autocomplete="country",
                maxlength=2,
                hint="Two letters, such as US.",
            ),
        ),
    ),
    Group(
        "Owner",
        (
            Input("owner.first_name", "Owner first name", autocomplete="given-name"),
            Input("owner.last_name", "Owner last name", autocomplete="family-name"),
            Input("owner.email", "Owner email", type="email", autocomplete="email"),
        ),
    ),
    Group(
        "Bank account for payouts",
        (
            Input(
                "bank_account.routing_number",
                "Routing number",
                inputmode="numeric",
                maxlength=9,
                hint="Nine digits, printed at the bottom left of a check.",
                autocomplete="off",
            ),
            Input(
                "bank_account.account_number",
                "Account number",
                inputmode="numeric",
                maxlength=17,
                hint="4 to 17 digits.",
                autocomplete="off",
            ),
        ),
        note="The money you finance is paid into this account.",
    ),
)
INPUTS = {f.name: f for g in GROUPS for f in g.fields}
LABELS = {name: f.label for name, f in INPUTS.items()}

# Messages in plain words for what the Connect API's model refuses, by field.
MESSAGES = {
    "ein": "Enter the EIN as two digits, a dash and seven digits (NN-NNNNNNN).",
    "bank_account.routing_number": "This is not a valid routing number: enter the nine "
    "digits exactly as printed on a check.",
    "bank_account.account_number": "Enter 4 to 17 digits, without spaces.",
    "owner.email": "Enter an email address such as name@example.com.",
    "address.country": "Enter a two-letter country code, such as US.",
    "address.postal_code": "Enter a ZIP code of at most 10 characters.",
}


def required(name: str) -> str:
    """The message for a required field left blank: "Enter the legal name.", "Enter the EIN."."""
    label = LABELS[name]
    if not label.split()[0].isupper():  # keep EIN and ZIP as they are written
        label = label[:1].lower() + label[1:]
    return f"Enter the {label}."


def nested(fields: dict[str, str]) -> dict[str, Any]:
    """Dotted form names to the API's nested body; blank fields are left out."""
    body: dict[str, Any] = {}
    for name in INPUTS:
        value = fields.get(name, "").strip()
        if not value:
            continue
        if name == "address.country":
            value = value.upper()
        head, _, tail = name.partition(".")
        if tail:
            body.setdefault(head, {})[tail] = value
        else:
            body[head] = value
    return body


def problems(exc: ValidationError) -> dict[str, str]:
    problems: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        name = ".".join(str(part) for part in error["loc"])
        if name in INPUTS and name not in problems:
            message = error["msg"].removeprefix("Value error, ")
            problems[name] = MESSAGES.get(name, message[:1].upper() + message[1:] + ".")
    return problems


def saved_values(business: FinancingBusiness) -> dict[str, str]:
    values = {"legal_name": business.legal_name or "", "ein": business.ein or ""}
    for nested in ("address", "owner"):
        for key, value in (getattr(business, nested) or {}).items():
            values[f"{nested}.{key}"] = str(value or "")
    values["bank_account.routing_number"] = business.bank_routing_number or ""
    values.setdefault("address.country", "US")
    return values


def render(
    business: FinancingBusiness,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> str:
    account = business.bank_account_number
    groups = list(GROUPS)
    if account:
        # The saved number is never sent back; say which one is on file.
        bank = groups[-1]
        hint = f"On file: the account ending in {account[-4:]}. Leave blank to keep it."
        fields = tuple(
            Input(**{**f.__dict__, "hint": hint, "required": False})
            if f.name == "bank_account.account_number"
            else f
            for f in bank.fields
        )
        groups[-1] = Group(bank.title, fields, bank.note)
    return templates.get_template("onboarding.html").render(
        groups=groups,
        values=values if values is not None else saved_values(business),
        errors=errors or {},
        labels=LABELS,
        submitted=errors is not None,
    )
