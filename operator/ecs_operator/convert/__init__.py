"""`ecs-operator convert`: ECS JSON/YAML (as pasted, exported or templated by others) to custom
resources or to the plain Kubernetes objects the operator would create, with a fidelity report.

load (files -> documents) -> detect (documents -> ECS objects) -> pipeline (validate, translate,
report) -> emit / report (YAML and the report). No module here imports kubernetes or kopf: the
command must start fast.
"""
