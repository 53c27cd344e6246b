"""Wire models for entities and entity users, with Monite's names and limits."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from fundline.kit.countries import CountryCode
from fundline.kit.filters import UTCDatetime
from fundline.kit.inputs import QueryList, Uri
from fundline.kit.pagination import ListParams, PaginationResponse

Text100 = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Text255 = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EntityType(StrEnum):
    INDIVIDUAL = "individual"
    ORGANIZATION = "organization"


class EntityStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    DELETED = "deleted"


class BusinessStructure(StrEnum):
    INCORPORATED_PARTNERSHIP = "incorporated_partnership"
    UNINCORPORATED_PARTNERSHIP = "unincorporated_partnership"
    PUBLIC_CORPORATION = "public_corporation"
    PRIVATE_CORPORATION = "private_corporation"
    SOLE_PROPRIETORSHIP = "sole_proprietorship"
    SINGLE_MEMBER_LLC = "single_member_llc"
    MULTI_MEMBER_LLC = "multi_member_llc"
    PRIVATE_PARTNERSHIP = "private_partnership"
    UNINCORPORATED_ASSOCIATION = "unincorporated_association"
    PUBLIC_PARTNERSHIP = "public_partnership"


class EntityAddress(Strict):
    city: Text100
    country: CountryCode = Field(description="ISO 3166-1 alpha-2 country code.")
    line1: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    line2: Text100 | None = None
    postal_code: Annotated[str, StringConstraints(min_length=1, max_length=10)]
    state: Text100 | None = None


class UpdateEntityAddress(Strict):
    city: Text100 | None = None
    line1: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    line2: Text100 | None = None
    postal_code: Annotated[str, StringConstraints(min_length=1, max_length=10)] | None = None
    state: Text100 | None = None


class Individual(Strict):
    date_of_birth: date | None = None
    first_name: Text100
    id_number: Text100 | None = None
    last_name: Text100
    ssn_last_4: Annotated[str, StringConstraints(min_length=4, max_length=4)] | None = None
    title: Annotated[str, StringConstraints(min_length=1, max_length=10)] | None = None


class OptionalIndividual(Strict):
    date_of_birth: date | None = None
    first_name: Text100 | None = None
    id_number: Text100 | None = None
    last_name: Text100 | None = None
    ssn_last_4: Annotated[str, StringConstraints(min_length=4, max_length=4)] | None = None
    title: Annotated[str, StringConstraints(min_length=1, max_length=10)] | None = None


class Organization(Strict):
    business_structure: BusinessStructure | None = None
    directors_provided: bool | None = None
    executives_provided: bool | None = None
    legal_entity_id: Annotated[str, StringConstraints(min_length=1, max_length=20)] | None = None
    legal_name: Text255
    owners_provided: bool | None = None
    representative_provided: bool | None = None


class OptionalOrganization(Strict):
    business_structure: BusinessStructure | None = None
    directors_provided: bool | None = None
    executives_provided: bool | None = None
    legal_entity_id: Annotated[str, StringConstraints(min_length=1, max_length=20)] | None = None
    legal_name: Text255 | None = None
    owners_provided: bool | None = None
    representative_provided: bool | None = None


class EntityFields(Strict):
    phone: Annotated[str, StringConstraints(max_length=100)] | None = None
    registration_authority: Text100 | None = None
    registration_number: Text100 | None = None
    tax_id: Annotated[str, StringConstraints(min_length=1, max_length=30)] | None = None
    website: Uri | None = None


class CreateEntityRequest(EntityFields):
    address: EntityAddress
    email: EmailStr
    individual: Individual | None = None
    organization: Organization | None = None
    type: EntityType


class UpdateEntityRequest(EntityFields):
    address: UpdateEntityAddress | None = None
    email: EmailStr | None = None
    individual: OptionalIndividual | None = None
    organization: OptionalOrganization | None = None


class EntityResponseBase(BaseModel):
    id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    address: EntityAddress
    email: str | None = None
    phone: str | None = None
    registration_authority: str | None = None
    registration_number: str | None = None
    status: EntityStatus
    tax_id: str | None = None
    website: str | None = None


class EntityOrganizationResponse(EntityResponseBase):
    organization: Organization
    type: Literal["organization"] = "organization"


class EntityIndividualResponse(EntityResponseBase):
    individual: Individual
    type: Literal["individual"] = "individual"


EntityResponse = Annotated[
    EntityOrganizationResponse | EntityIndividualResponse, Field(discriminator="type")
]


class EntityPaginationResponse(PaginationResponse[EntityResponse]):
    pass


class EntityCursorFields(StrEnum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"


class EntityListParams(ListParams):
    sort: EntityCursorFields | None = None
    type: EntityType | None = None
    status: EntityStatus | None = None
    id__in: QueryList[uuid.UUID] | None = None
    id__not_in: QueryList[uuid.UUID] | None = None
    email: str | None = None
    email__in: QueryList[str] | None = None
    email__not_in: QueryList[str] | None = None
    created_at__gt: UTCDatetime | None = None
    created_at__lt: UTCDatetime | None = None
    created_at__gte: UTCDatetime | None = None
    created_at__lte: UTCDatetime | None = None


class EntityUserStatus(StrEnum):
    ACTIVE = "active"
    DELETED = "deleted"


class CreateEntityUserRequest(Strict):
    email: EmailStr | None = None
    first_name: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    last_name: Annotated[str, StringConstraints(max_length=255)] | None = None
    login: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    phone: Annotated[str, StringConstraints(max_length=100)] | None = None
    role_id: uuid.UUID | None = None
    title: Annotated[str, StringConstraints(max_length=255)] | None = None


class UpdateEntityUserRequest(Strict):
    email: EmailStr | None = None
    first_name: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    last_name: Annotated[str, StringConstraints(max_length=255)] | None = None
    login: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    phone: Annotated[str, StringConstraints(max_length=100)] | None = None
    role_id: uuid.UUID | None = None
    title: Annotated[str, StringConstraints(max_length=255)] | None = None


class EntityUserResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    email: str | None = None
    first_name: str
    last_name: str | None = None
    login: str
    phone: str | None = None
    role_id: uuid.UUID
    status: EntityUserStatus
    userpic_file_id: uuid.UUID | None = None


class EntityUserPaginationResponse(PaginationResponse[EntityUserResponse]):
    pass


class EntityUserCursorFields(StrEnum):
    UPDATED_AT = "updated_at"


class EntityUserListParams(ListParams):
    sort: EntityUserCursorFields | None = None
    id__in: QueryList[uuid.UUID] | None = None
    id__not_in: QueryList[uuid.UUID] | None = None
    role_id: uuid.UUID | None = None
    role_id__in: QueryList[uuid.UUID] | None = None
    login: str | None = None
    status: str | None = None
    first_name: str | None = None
    name__istartswith: str | None = None
    created_at__gt: UTCDatetime | None = None
    created_at__lt: UTCDatetime | None = None
    created_at__gte: UTCDatetime | None = None
    created_at__lte: UTCDatetime | None = None
