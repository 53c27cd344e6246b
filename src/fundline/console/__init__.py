"""The lender console, ``/lender/``: the operator's pages for review, funding, servicing and the
portfolio, on the lender API's rules (``backoffice.service``), never a second copy of them."""
