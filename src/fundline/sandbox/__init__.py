"""The sandbox (``/sandbox/v1`` and ``fundline sandbox …``): move the clock, simulate what a
lender or payer does, reset a business. Mounted only in sandbox mode."""
