"""Entities and entity users, as Monite has them."""
