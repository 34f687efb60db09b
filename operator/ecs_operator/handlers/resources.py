"""kopf resource selectors for our kinds and the built-in ones the operator watches."""

from ecs_operator import API_GROUP, API_VERSION

TASK_DEFINITIONS = (API_GROUP, API_VERSION, "taskdefinitions")
TASKS = (API_GROUP, API_VERSION, "tasks")
SERVICES = (API_GROUP, API_VERSION, "services")
CLUSTERS = (API_GROUP, API_VERSION, "clusters")
CAPACITY_PROVIDERS = (API_GROUP, API_VERSION, "capacityproviders")
CONTAINER_INSTANCES = (API_GROUP, API_VERSION, "containerinstances")

PODS = ("v1", "pods")
NODES = ("v1", "nodes")
DEPLOYMENTS = ("apps", "v1", "deployments")
DAEMON_SETS = ("apps", "v1", "daemonsets")
CONTROLLER_REVISIONS = ("apps", "v1", "controllerrevisions")
