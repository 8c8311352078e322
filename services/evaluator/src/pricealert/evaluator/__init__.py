"""Evaluator: matches every tick against the index of active alerts and emits each trigger exactly once."""
