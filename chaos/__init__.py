"""`make chaos`: fault scenarios under load with an oracle, plus a hostile-input run against the gateway."""
