"""The built-in lender: credit policy, underwriting, the servicing state machine and the ledger."""
