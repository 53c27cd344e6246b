"""The Connect API (`/connect/v1`): the business user's side of financing, opened with the
one-time tokens the financing endpoints hand out."""
