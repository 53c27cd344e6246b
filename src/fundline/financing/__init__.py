"""The four Monite financing endpoints: tokens, offers, requesting financing, listing."""
