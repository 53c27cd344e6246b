"""Bulk import of receivables and payables from CSV files (``fundline import``)."""
