"""ECS's task life cycle read off Pods: pure functions, the clock passed in."""
