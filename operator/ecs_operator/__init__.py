"""ecs-operator: Amazon ECS concepts as Kubernetes custom resources, run with ECS's semantics."""

API_GROUP = "ecs.operator.dev"
API_VERSION = "v1alpha1"
