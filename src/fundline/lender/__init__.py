"""The lender API (``/lender/v1``) and ``fundline lender …``: the operator's side of financing."""
