"""Intelligent alerting: intake of operational events, normalisation to one alert model,
enrichment, dedup / grouping / suppression / routing (see ``model`` for the contract)."""
