"""Fixtures shared by every test suite in the repository."""

pytest_plugins = ["pricealert.testsupport.fixtures", "pricealert.testsupport.cluster"]
