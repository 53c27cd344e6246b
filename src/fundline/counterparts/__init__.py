"""Counterparts: an entity's customers and vendors, as Monite has them."""
