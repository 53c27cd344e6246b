"""The back office: the lender's operators at work. The lender API (``/lender/v1``) and
``fundline lender …``; the engine they drive is ``lending/``."""
