"""What every pricealert service shares: settings, logging, stream names, events, the consumer loop."""
