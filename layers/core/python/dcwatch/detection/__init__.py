"""Detection: probe rounds in, check and site health, the decision to fail over, and what the evaluator announces."""
