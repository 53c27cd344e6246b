"""Receivables: Monite-compatible invoices (drafts, issuing, payment, listing)."""
