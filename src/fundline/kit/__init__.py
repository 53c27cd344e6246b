"""Shared mechanisms with no business rules of their own."""
