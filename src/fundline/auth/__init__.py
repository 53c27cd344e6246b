"""Partner and entity-user access tokens, as Monite issues them."""
