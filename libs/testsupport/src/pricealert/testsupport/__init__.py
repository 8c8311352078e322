"""Test support: pytest fixtures with real servers (`fixtures`), polling (`polling`), a local nginx (`nginx`)."""
