"""kopf handlers: thin, one module per ECS kind. Importing this package registers them."""

from . import (  # noqa: F401
    capacity_association,
    capacity_indexes,
    capacity_providers,
    clusters,
    container_instances,
    indexes,
    member_of,
    service_indexes,
    services,
    setup,
    task_definitions,
    tasks,
)
