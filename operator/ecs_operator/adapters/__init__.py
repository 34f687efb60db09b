"""Kubernetes API access (the only place that talks to the API besides kopf itself)."""
