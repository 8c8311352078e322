"""Local stand-ins for the outside world: Redis, Postgres, SMTP, the exchange, and the dev runner."""
