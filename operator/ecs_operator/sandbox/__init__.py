"""The sandbox: a real Kubernetes v1.37 control plane (etcd, kube-apiserver, controller-manager,
scheduler) built from Go modules and run as local processes, with kwok simulating the nodes.

It backs every end-to-end test and `ecs-operator sandbox up` for users; see docs/sandbox.md.
Pod annotations understood by the simulated kubelets (stages/*.yaml):

- `sim.ecs.operator.dev/exit: "<container>=<code>[,...]"` with optional
  `sim.ecs.operator.dev/exit-after: "<duration>"` (default 1s): once Running, those containers
  terminate with that exit code; the pod ends Succeeded/Failed when all containers have exited.
- `sim.ecs.operator.dev/unready: "<container>[,...]"`: those containers report ready: false and
  the pod's Ready condition is False (a failing readiness probe).
- `sim.ecs.operator.dev/fail-start: "<container>[,...]"`: those containers wait with reason
  ErrImagePull and the pod stays Pending (an image that cannot be pulled).
"""
