"""Pure translation of ECS shapes into Kubernetes objects, with a fidelity report (no I/O)."""
