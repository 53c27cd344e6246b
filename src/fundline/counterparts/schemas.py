"""Wire models for counterparts and their addresses, with Monite's names and shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, field_validator

from fundline.kit.countries import CountryCode
from fundline.kit.filters import UTCDatetime
from fundline.kit.inputs import QueryList
from fundline.kit.languages import LanguageCode
from fundline.kit.pagination import ListParams, PaginationResponse

Text20 = Annotated[str, StringConstraints(min_length=1, max_length=20)]
Text100 = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Text255 = Annotated[str, StringConstraints(min_length=1, max_length=255)]
TaxId = Annotated[str, StringConstraints(max_length=30)]
Phone = Annotated[str, StringConstraints(max_length=100)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CounterpartType(StrEnum):
    INDIVIDUAL = "individual"
    ORGANIZATION = "organization"


class CounterpartAddress(Strict):
    """Monite's ``CounterpartAddress``: the body of POST /counterparts/{id}/addresses."""

    city: Text255
    country: CountryCode = Field(description="ISO 3166-1 alpha-2 country code.")
    line1: Text255
    line2: Annotated[str, StringConstraints(max_length=255)] | None = None
    postal_code: Text20
    state: Annotated[str, StringConstraints(max_length=255)] | None = None


def _no_tags(value: list[uuid.UUID] | None) -> list[uuid.UUID] | None:
    # Fundline has no tags API, so no tag id can exist: naming one is an error, not a no-op.
    if value:
        raise ValueError("tags are not supported; tag_ids must be empty")
    return value


class CounterpartOrganizationCreatePayload(Strict):
    address: CounterpartAddress
    email: EmailStr | None = None
    is_customer: bool
    is_vendor: bool
    legal_name: Text255
    phone: Phone | None = None
    tag_ids: list[uuid.UUID] | None = None

    _tags = field_validator("tag_ids")(_no_tags)


class CounterpartIndividualCreatePayload(Strict):
    address: CounterpartAddress
    email: EmailStr | None = None
    first_name: Text255
    is_customer: bool
    is_vendor: bool
    last_name: Text255
    phone: Phone | None = None
    tag_ids: list[uuid.UUID] | None = None
    title: Text100 | None = None

    _tags = field_validator("tag_ids")(_no_tags)


class CounterpartRootFields(Strict):
    external_reference: Text255 | None = None
    language: LanguageCode = "en"
    reminders_enabled: bool = True
    tax_id: TaxId | None = None


class CounterpartOrganizationRootCreatePayload(CounterpartRootFields):
    organization: CounterpartOrganizationCreatePayload
    type: Literal["organization"]


class CounterpartIndividualRootCreatePayload(CounterpartRootFields):
    individual: CounterpartIndividualCreatePayload
    type: Literal["individual"]


CounterpartCreatePayload = Annotated[
    CounterpartOrganizationRootCreatePayload | CounterpartIndividualRootCreatePayload,
    Field(discriminator="type"),
]


# --- updates: every field optional; null clears only what may be empty ---------------------


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may not be null")
    return value


class CounterpartOrganizationUpdatePayload(Strict):
    email: EmailStr | None = None
    is_customer: bool | None = None
    is_vendor: bool | None = None
    legal_name: Text255 | None = None
    phone: Phone | None = None
    tag_ids: list[uuid.UUID] | None = None

    _required = field_validator("is_customer", "is_vendor", "legal_name", mode="before")(_not_null)
    _tags = field_validator("tag_ids")(_no_tags)


class CounterpartIndividualUpdatePayload(Strict):
    email: EmailStr | None = None
    first_name: Text255 | None = None
    is_customer: bool | None = None
    is_vendor: bool | None = None
    last_name: Text255 | None = None
    phone: Phone | None = None
    tag_ids: list[uuid.UUID] | None = None
    title: Text100 | None = None

    _required = field_validator(
        "first_name", "last_name", "is_customer", "is_vendor", mode="before"
    )(_not_null)
    _tags = field_validator("tag_ids")(_no_tags)


class CounterpartRootUpdateFields(Strict):
    default_billing_address_id: uuid.UUID | None = None
    default_shipping_address_id: uuid.UUID | None = None
    external_reference: Text255 | None = None
    language: LanguageCode | None = None
    reminders_enabled: bool | None = None
    tax_id: TaxId | None = None

    _required = field_validator("language", "reminders_enabled", mode="before")(_not_null)


class CounterpartOrganizationRootUpdatePayload(CounterpartRootUpdateFields):
    organization: CounterpartOrganizationUpdatePayload


class CounterpartIndividualRootUpdatePayload(CounterpartRootUpdateFields):
    individual: CounterpartIndividualUpdatePayload


# No `type` on updates: the nested key (`organization` / `individual`) picks the branch.
CounterpartUpdatePayload = (
    CounterpartIndividualRootUpdatePayload | CounterpartOrganizationRootUpdatePayload
)


# --- responses -------------------------------------------------------------------------------


class CounterpartOrganizationResponse(BaseModel):
    email: str | None = None
    is_customer: bool
    is_vendor: bool
    legal_name: str
    phone: str | None = None
    tags: list[Any] = Field(default_factory=list)


class CounterpartIndividualResponse(BaseModel):
    email: str | None = None
    first_name: str
    is_customer: bool
    is_vendor: bool
    last_name: str
    phone: str | None = None
    tags: list[Any] = Field(default_factory=list)
    title: str | None = None


class CounterpartRootResponse(BaseModel):
    id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    created_automatically: bool = False
    created_by_entity_user_id: uuid.UUID | None = None
    default_billing_address_id: uuid.UUID | None = None
    default_shipping_address_id: uuid.UUID | None = None
    external_reference: str | None = None
    language: str
    reminders_enabled: bool
    tax_id: str | None = None


class CounterpartOrganizationRootResponse(CounterpartRootResponse):
    organization: CounterpartOrganizationResponse
    type: Literal["organization"] = "organization"


class CounterpartIndividualRootResponse(CounterpartRootResponse):
    individual: CounterpartIndividualResponse
    type: Literal["individual"] = "individual"


CounterpartResponse = Annotated[
    CounterpartIndividualRootResponse | CounterpartOrganizationRootResponse,
    Field(discriminator="type"),
]


class CounterpartPaginationResponse(PaginationResponse[CounterpartResponse]):
    pass


class CounterpartAddressResponseWithCounterpartID(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    city: str
    counterpart_id: uuid.UUID
    country: str
    line1: str
    line2: str | None = None
    postal_code: str
    state: str | None = None


class CounterpartAddressResourceList(BaseModel):
    data: list[CounterpartAddressResponseWithCounterpartID]


# --- list parameters -------------------------------------------------------------------------


class CounterpartCursorFields(StrEnum):
    COUNTERPART_NAME = "counterpart_name"


class CounterpartListParams(ListParams):
    # Monite names the address filters with a dot; tokens store them by field name.
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    sort: CounterpartCursorFields | None = None
    iban: Annotated[str, StringConstraints(max_length=34)] | None = None
    sort_code: Annotated[str, StringConstraints(max_length=100)] | None = None
    account_number: Annotated[str, StringConstraints(max_length=100)] | None = None
    tax_id: TaxId | None = None
    vat_id: Annotated[str, StringConstraints(max_length=30)] | None = None
    id__in: QueryList[uuid.UUID] | None = None
    type: CounterpartType | None = None
    counterpart_name: str | None = None
    counterpart_name__iexact: str | None = None
    counterpart_name__contains: str | None = None
    counterpart_name__icontains: str | None = None
    is_vendor: bool | None = None
    is_customer: bool | None = None
    email: str | None = None
    email__contains: str | None = None
    email__icontains: str | None = None
    created_at__gt: UTCDatetime | None = None
    created_at__lt: UTCDatetime | None = None
    created_at__gte: UTCDatetime | None = None
    created_at__lte: UTCDatetime | None = None
    address_country: str | None = Field(None, alias="address.country")
    address_city: str | None = Field(None, alias="address.city")
    address_postal_code: str | None = Field(None, alias="address.postal_code")
    address_state: str | None = Field(None, alias="address.state")
    address_line1: str | None = Field(None, alias="address.line1")
    address_line2: str | None = Field(None, alias="address.line2")
    tag_ids__in: QueryList[uuid.UUID] | None = None
