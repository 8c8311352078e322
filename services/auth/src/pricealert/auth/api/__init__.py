"""HTTP API of the auth service."""
