"""`ecs-operator api`: ECS's own API (AWS JSON 1.1, SigV4) over the custom resources.

Stateless: every operation reads and writes the Cluster, TaskDefinition, Service and Task
resources of the caller's namespace and answers from their spec and status.
"""
