"""Node pools: simulated EC2 capacity (kwok Node objects shaped like real instance types)."""
