"""ECS task placement as Kubernetes scheduling: the cluster query language (memberOf), placement
strategies and distinctInstance. Pure code: callers pass in the nodes they know about."""
