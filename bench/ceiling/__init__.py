"""The ceiling: the least a server can do for each scenario ``bench/run`` measures.

A bare ASGI application on asyncpg (no framework, no authentication, no validation, no ORM):
for reads it runs the statements Fundline runs (the SQL text copied from Fundline's statement
log, checked by ``bench.ceiling.checks`` before each run) and writes the same JSON with
orjson; for writes it writes the same rows in one transaction of the raw driver. ``bench.load``
measures it beside Fundline and reports Fundline ÷ ceiling.

    python -m bench.ceiling --database-url postgresql://postgres@127.0.0.1:5432/db --port 8812

Modules: ``lists`` (``GET /v1/financing_invoices``), ``offers`` (``GET /v1/financing_offers``),
``auth`` (``POST /v1/auth/token``), ``writes`` (``POST /v1/financing_invoices`` and the Connect
confirmation), ``receivables`` (``POST /v1/receivables`` and its issue), ``app`` (routing);
for ``bench.load``: ``checks`` (what it verifies before measuring), ``targets`` (the write
scenarios' requests), ``restore`` (puts the database back after a write scenario).
"""
