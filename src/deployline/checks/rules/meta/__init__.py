"""Rules about the checker's own inputs (suppressions), outside the failure catalog."""
