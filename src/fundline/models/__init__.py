"""SQLAlchemy models, one module per aggregate. Importing this package registers them all."""

from fundline.models.counterpart import Counterpart, CounterpartAddress
from fundline.models.entity import Entity, EntityUser
from fundline.models.event import Event
from fundline.models.idempotency import IdempotencyKey
from fundline.models.partner import AccessToken, ApiClient, OperatorKey, Partner

__all__ = [
    "AccessToken",
    "ApiClient",
    "Counterpart",
    "CounterpartAddress",
    "Entity",
    "EntityUser",
    "Event",
    "IdempotencyKey",
    "OperatorKey",
    "Partner",
]
