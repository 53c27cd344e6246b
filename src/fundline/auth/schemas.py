from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class GrantType(StrEnum):
    CLIENT_CREDENTIALS = "client_credentials"
    ENTITY_USER = "entity_user"


class ObtainTokenPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: uuid.UUID = Field(description="Your partner client ID.")
    client_secret: str = Field(description="Your partner client secret.")
    entity_user_id: uuid.UUID | None = Field(
        None, description="The entity user to issue the token for; only with `entity_user`."
    )
    grant_type: GrantType = Field(
        description="`client_credentials`: a partner-level token; `entity_user`: an entity "
        "user token."
    )


class AccessTokenResponse(BaseModel):
    access_token: str = Field(description="Send it as `Authorization: Bearer ACCESS_TOKEN`.")
    expires_in: int = Field(description="The token expiration time, in seconds.")
    token_type: str = Field("Bearer", description='Always "Bearer".')


class RevokeTokenPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: uuid.UUID
    client_secret: str
    token: str = Field(description="The token to revoke.")


class MessageResponse(BaseModel):
    message: str
