"""ECS's scaling arithmetic: capacity provider strategy splits, rolling deployment bounds and the
circuit breaker threshold, and capacity provider managed scaling. Pure code, clock injected."""
