"""Alert webhooks out: events, Standard Webhooks signing, a durable outbox, delivery.

Modules, one job each:

    event     the frozen event value and its JSON (pure)
    signing   Standard Webhooks signatures (pure)
    payloads  the body per consumer format: standard or Alertmanager v4 (pure)
    retry     what an attempt's result means and when to retry (pure)
    ssrf      which target addresses `deny_private` refuses (pure)
    consumer  a configured consumer, resolved (pure)
    records   one delivery and its stored JSON (pure)
    store     the outbox store contract; memory and redis implement it
    sender    one HTTP attempt (aiohttp)
    stats     delivery counters and Prometheus metrics
    outbox    enqueue and the delivery loops
    api       the aiohttp routes
    settings  the pydantic configuration models

See README.md beside this file.
"""
