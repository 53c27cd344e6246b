"""SQLAlchemy models, one module per aggregate. Importing this package registers them all.

``IdempotencyKey`` is defined by the mechanism that owns it (``kit/idempotency.py``, which may
not import the domain) and registered from here like the rest.
"""

from fundline.kit.idempotency import IdempotencyKey
from fundline.models.connect import ConnectSession, ConnectToken
from fundline.models.console import AuditEntry, ConsoleSession
from fundline.models.counterpart import Counterpart, CounterpartAddress
from fundline.models.entity import Entity, EntityUser
from fundline.models.event import Event
from fundline.models.financing import (
    FinancingBusiness,
    FinancingInvoice,
    FinancingOffer,
    FinancingRequest,
    FinancingStatusChange,
    Instalment,
    PricingPlan,
)
from fundline.models.ledger import JournalEntry, Posting
from fundline.models.partner import AccessToken, ApiClient, OperatorKey, Partner, PartnerOrigin
from fundline.models.payable import Payable
from fundline.models.receivable import Receivable, ReceivableCounter
from fundline.models.sandbox import SandboxClock, SandboxDemo
from fundline.models.webhook import WebhookDelivery, WebhookSubscription

__all__ = [
    "AccessToken",
    "ApiClient",
    "AuditEntry",
    "ConnectSession",
    "ConnectToken",
    "ConsoleSession",
    "Counterpart",
    "CounterpartAddress",
    "Entity",
    "EntityUser",
    "Event",
    "FinancingBusiness",
    "FinancingInvoice",
    "FinancingOffer",
    "FinancingRequest",
    "FinancingStatusChange",
    "IdempotencyKey",
    "Instalment",
    "JournalEntry",
    "OperatorKey",
    "Partner",
    "PartnerOrigin",
    "Payable",
    "Posting",
    "PricingPlan",
    "Receivable",
    "ReceivableCounter",
    "SandboxClock",
    "SandboxDemo",
    "WebhookDelivery",
    "WebhookSubscription",
]
