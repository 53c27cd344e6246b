"""The Kanmon adapter: Fundline's lender seam over Kanmon Public V2 (docs/lenders.md)."""
