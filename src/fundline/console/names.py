"""How the console names a business, in SQL, the same on every page: its legal name as the
lender has it (from onboarding), else its entity's (an organization's legal name, a person's
first and last names)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, func

from fundline.models import Entity, FinancingBusiness


def business_name() -> ColumnElement[str]:
    """The name of the business of the rows joined to ``financing_businesses`` and
    ``entities``; ``(no name)`` when neither gives one."""
    person = func.trim(
        func.coalesce(Entity.individual["first_name"].as_string(), "")
        + " "
        + func.coalesce(Entity.individual["last_name"].as_string(), "")
    )
    return func.coalesce(
        func.nullif(FinancingBusiness.legal_name, ""),
        func.nullif(Entity.organization["legal_name"].as_string(), ""),
        func.nullif(person, ""),
        "(no name)",
    )
