"""The ingest service: Binance trades in, ticks out, subscribed to exactly the symbols with active alerts."""
