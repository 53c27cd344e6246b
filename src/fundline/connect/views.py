"""``/connect/v1/views``: the widget's steps, rendered on the server.

Each view answers ``{"html": …, "events": […]}``: the frame puts the HTML in place and passes
the events to the embedding page. Forms arrive as ``{"fields": {name: text}}`` and go through
the Connect API's own models and services, so a rule (the EIN's format, the routing number's
checksum, a plan's maximum, the credit limit) is enforced once, there; a broken rule comes
back as the same form with the message beside the field and what the user typed kept.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, StringConstraints, ValidationError
from pydantic import Field as PydanticField

from fundline.auth.deps import Session
from fundline.connect import confirmation, events, onboarding_form, service, steps
from fundline.connect.router import ConnectSessionDep, WidgetDep
from fundline.connect.schemas import ConfirmInvoice, ConfirmInvoicesRequest, UpdateBusinessRequest
from fundline.connect.widget import PREFIX, templates
from fundline.financing.listing import render
from fundline.kit import money
from fundline.kit.errors import FundlineError
from fundline.kit.routing import TransactionalRoute
from fundline.models.financing import WCBusinessStatus, missing_fields

router = APIRouter(prefix=f"{PREFIX}/views", tags=["Connect"], route_class=TransactionalRoute)

FormText = Annotated[str, StringConstraints(max_length=1000)]


class ViewForm(BaseModel):
    fields: Annotated[dict[str, FormText], PydanticField(max_length=200)] = {}


class ViewResponse(BaseModel):
    html: str = PydanticField(description="The step, as HTML to put in the widget.")
    events: list[dict[str, Any]] = PydanticField(
        description="Kanmon Connect events for the embedding page, in order."
    )


@router.get("/current", response_model=ViewResponse)
async def current(
    session: Session, connect_session: ConnectSessionDep, widget: WidgetDep
) -> JSONResponse:
    """The business's current step: onboarding, waiting or declined, the offer, or servicing."""
    return (await steps.current_step(session, connect_session, widget=widget)).response()


@router.post("/onboarding", response_model=ViewResponse)
async def submit_onboarding(
    session: Session, connect_session: ConnectSessionDep, widget: WidgetDep, form: ViewForm
) -> JSONResponse:
    """Save the onboarding form (through `PUT /connect/v1/business`'s model and service).
    A refused field comes back as the form with its message; complete, the next step."""
    business = await service.business_of(session, connect_session)
    if business.status == WCBusinessStatus.ONBOARDED:
        return (await steps.current_step(session, connect_session, widget=widget)).response()
    typed = {name: form.fields.get(name, "") for name in onboarding_form.INPUTS}
    try:
        payload = UpdateBusinessRequest.model_validate(onboarding_form.nested(form.fields))
    except ValidationError as exc:
        html = onboarding_form.render(business, values=typed, errors=onboarding_form.problems(exc))
        return steps.View(html).response()
    async with session.begin_nested():
        business = await service.update_business(session, connect_session, payload, widget=widget)
    missing = missing_fields(business)
    if missing:
        errors = {name: onboarding_form.required(name) for name in missing}
        values = {**onboarding_form.saved_values(business), **{k: v for k, v in typed.items() if v}}
        values.pop("bank_account.account_number", None)
        html = onboarding_form.render(business, values=values, errors=errors)
        return await steps.with_state(session, business.entity_id, html)
    return (await steps.current_step(session, connect_session, widget=widget)).response()


@router.post("/offers/{offer_id}/accept", response_model=ViewResponse)
async def accept_offer(
    session: Session,
    connect_session: ConnectSessionDep,
    widget: WidgetDep,
    offer_id: uuid.UUID,
) -> JSONResponse:
    """Accept the offer (as `POST /connect/v1/offers/{id}/accept`), then the next step."""
    await service.accept_offer(session, connect_session, offer_id, widget=widget)
    return (await steps.current_step(session, connect_session, widget=widget)).response()


@router.get("/servicing", response_model=ViewResponse)
async def servicing(session: Session, connect_session: ConnectSessionDep) -> JSONResponse:
    """Each financed invoice, its status, schedule and next repayment; the limit's use."""
    html = await steps.servicing_step(session, connect_session.entity_id)
    return await steps.with_state(session, connect_session.entity_id, html)


@router.get("/invoices", response_model=ViewResponse)
async def invoices(
    session: Session, connect_session: ConnectSessionDep, widget: WidgetDep
) -> JSONResponse:
    """The session's invoices to confirm, each with a plan, an amount and a live quote."""
    drafts, offer = await confirmation.drafts_and_offer(session, connect_session, widget=widget)
    if offer is None:
        html = await steps.servicing_step(
            session, connect_session.entity_id, note="These invoices are already confirmed."
        )
        return await steps.with_state(session, connect_session.entity_id, html)
    html = await confirmation.render(
        session, await confirmation.choices(session, drafts, None, widget=widget), offer
    )
    return await steps.with_state(session, connect_session.entity_id, html)


@router.post("/invoices/quote", response_model=ViewResponse)
async def quote(
    session: Session, connect_session: ConnectSessionDep, widget: WidgetDep, form: ViewForm
) -> JSONResponse:
    """The quote of the confirmation form as it stands: per invoice and in total, and the
    limit that would remain. Nothing is saved."""
    drafts, offer = await confirmation.drafts_and_offer(session, connect_session, widget=widget)
    if offer is None:
        return steps.View("").response()
    choices = await confirmation.choices(session, drafts, form.fields, widget=widget)
    html = templates.get_template("quote.html").render(
        quote=confirmation.quote_context(choices, offer)
    )
    return steps.View(html).response()


@router.post("/invoices/confirm", response_model=ViewResponse)
async def confirm(
    session: Session, connect_session: ConnectSessionDep, widget: WidgetDep, form: ViewForm
) -> JSONResponse:
    """Confirm the chosen invoices (as `POST /connect/v1/invoices/confirm`: all or nothing).
    Reports `USER_CONFIRMED_INVOICE` for each, with the figures `GET /v1/financing_invoices`
    shows."""
    drafts, offer = await confirmation.drafts_and_offer(session, connect_session, widget=widget)
    if offer is None:
        return await invoices(session, connect_session, widget)
    choices = await confirmation.choices(session, drafts, form.fields, widget=widget)
    taken = [ch for ch in choices if ch.include]
    error = confirmation.refusal(choices, offer, form.fields)
    if error is None:
        payload = ConfirmInvoicesRequest(
            invoices=[
                ConfirmInvoice(
                    invoice_id=ch.fi.invoice_id,
                    pricing_plan_id=ch.plan.pricing_plan_id,
                    requested_amount=ch.requested,
                )
                for ch in taken
            ]
        )
        try:
            async with session.begin_nested():
                confirmed = await service.confirm_invoices(
                    session, connect_session, payload, widget=widget
                )
        except FundlineError as exc:
            error = exc.message
            # The savepoint's rollback expired what was loaded: read the form's rows again.
            drafts, offer = await confirmation.drafts_and_offer(
                session, connect_session, widget=widget
            )
            if offer is None:
                return await invoices(session, connect_session, widget)
            choices = await confirmation.choices(session, drafts, form.fields, widget=widget)
    if error is not None:
        return steps.View(
            await confirmation.render(session, choices, offer, error=error)
        ).response()

    rendered = await render(session, confirmed)
    emails = await steps.payor_emails(session, confirmed)
    sent = [
        events.confirmed_invoice(out, fi, payor_email=emails.get(fi.invoice_id))
        for out, fi in zip(rendered, confirmed, strict=True)
    ]
    words = "; ".join(
        f"invoice {out.document_id}: {money.display(out.advance_amount or 0, out.currency)} "
        f"to you, {out.status.value}"
        for out in rendered
    )
    html = await steps.servicing_step(
        session, connect_session.entity_id, confirmed=words[:1].upper() + words[1:] + "."
    )
    return await steps.with_state(session, connect_session.entity_id, html, before=sent)
