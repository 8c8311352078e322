"""Notifier: sends one email per trigger, idempotently, and reports the outcome."""
