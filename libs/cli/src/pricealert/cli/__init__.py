"""The pricealert operator CLI."""
