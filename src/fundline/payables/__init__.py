"""Payables (accounts payable), Monite-compatible."""
