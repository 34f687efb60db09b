"""What the operator holds per process: the typed context handlers get as kopf's memo, and the per-object
workers that batch wake-ups into one reconcile."""
