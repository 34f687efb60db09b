"""Validate, translate and judge the ECS objects of one `convert` run.

Services and tasks name their task definition (family, family:revision or ARN); it is looked up
among the task definitions of the same run, as the operator looks it up among the registered
revisions. Translation uses the operator's own functions, so `--to k8s` shows what the operator
would create.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from ecs_operator import labels as L
from ecs_operator.arns import parse_task_definition_ref, task_definition_arn
from ecs_operator.models import EcsModel, kind_named, problems_from_validation_error, validate
from ecs_operator.settings import Settings
from ecs_operator.translate.fidelity import Entry, FidelityReport, summarize
from ecs_operator.translate.names import dns_label
from ecs_operator.translate.pod import Revision, pod_template
from ecs_operator.translate.pod_checks import translation_problems
from ecs_operator.translate.policy import ALLOW_ALL, WorkloadPolicy, policy_violations, service_policy_violations
from ecs_operator.translate.volumes import storage_objects

from .detect import EcsObject
from .load import Document
from .problems import InputProblem

if TYPE_CHECKING:  # imported where they run: only runs with services or tasks need them
    from ecs_operator.translate.service import ServicePlan
    from ecs_operator.translate.task import TaskPlan

Target = Literal["crs", "k8s"]
DEFAULT_CLUSTER = "default"  # the operator's cluster for tasks and services that name none


@dataclass
class Conversion:
    """One ECS object: its model, names, translation and fidelity report."""

    obj: EcsObject
    index: int
    """Position among the ECS objects of its file."""
    model: Any
    name: str
    """metadata.name of the custom resource (and base name of the Kubernetes objects)."""
    ecs_name: str
    """family, serviceName, clusterName or capacity provider name (metadata.name when the input has none)."""
    namespace: str | None
    """--namespace, else a custom resource's own; None: kubectl's current namespace."""
    fields: list[Entry] = field(default_factory=list)
    objects: list[dict[str, Any]] = field(default_factory=list)
    """The plain Kubernetes objects (`--to k8s`)."""
    note: str = ""
    task_definition: dict[str, Any] | None = None
    """Services and tasks: which task definition they run and where its report is; `applied`: the
    taskDefinition their custom resource names when it differs from the input's (see _mapped_reference)."""
    revision: Revision | None = None
    """Task definitions: the revision services and tasks of the same run resolve to."""

    @property
    def label(self) -> str:
        return f"{self.obj.document.file} #{self.index}"


@dataclass
class Outcome:
    conversions: list[Conversion] = field(default_factory=list)
    problems: list[InputProblem] = field(default_factory=list)
    warnings: list[InputProblem] = field(default_factory=list)


def convert(objects: list[tuple[EcsObject, int]], to: Target, namespace: str | None,
            settings: Settings | None = None) -> Outcome:
    """Every object is validated; translation (and its own checks) follows once all are valid."""
    settings = settings or Settings()
    out = Outcome()
    for obj, index in objects:
        model, problems = _validated(obj)
        out.problems += problems
        if model is not None and not problems:
            out.conversions.append(_named(obj, index, model, namespace or obj.namespace))
    _check_unique(out)
    if not out.problems:
        revisions = _revisions(out.conversions, settings)
        for c in out.conversions:
            out.problems += _translate(c, to, settings, revisions, out)
    _template_hints(out, [obj.document for obj, _ in objects])
    return out


def _template_hints(out: Outcome, documents: list[Document]) -> None:
    """Once per document: why it failed (placeholders), or that placeholders were converted as text."""
    failed = {p.where for p in out.problems}
    for where, document in {d.where: d for d in documents}.items():
        for hint in document.hints:
            if where in failed:
                out.problems.append(InputProblem(where, "", f"{hint}: render the template first"))
            else:
                out.warnings.append(InputProblem(where, "", f"{hint}: kept as literal text; render the template first"))


def _validated(obj: EcsObject) -> tuple[EcsModel | None, list[InputProblem]]:
    where = obj.document.where
    try:
        model = kind_named(obj.kind).spec_model.model_validate(obj.spec)
    except ValidationError as e:
        return None, [InputProblem(where, obj.file_path(p.path), p.message) for p in problems_from_validation_error(e)]
    return model, [InputProblem(where, obj.file_path(p.path), p.message) for p in validate(model)]


def _named(obj: EcsObject, index: int, model: Any, namespace: str | None) -> Conversion:
    kind = kind_named(obj.kind)
    ecs_name = getattr(model, kind.name_field) if kind.name_field else None
    name = obj.name or dns_label(ecs_name or obj.document.stem)
    return Conversion(obj, index, model, name, ecs_name or name, namespace if kind.scope == "Namespaced" else None)


def _check_unique(out: Outcome) -> None:
    seen: dict[tuple[str, str], Conversion] = {}
    keep = []
    for c in out.conversions:
        key = (c.obj.kind, c.name)
        first = seen.setdefault(key, c)
        if first is not c:
            out.problems.append(InputProblem(c.obj.document.where, c.obj.path, (
                f"a second {c.obj.kind} named {c.name!r} (the first is {first.label}): "
                "each custom resource needs its own name")))
        else:
            keep.append(c)
    out.conversions = keep


def _revisions(conversions: list[Conversion], settings: Settings) -> dict[str, dict[int, Conversion]]:
    """family -> revision -> the task definition conversion."""
    index: dict[str, dict[int, Conversion]] = {}
    for c in conversions:
        if c.obj.kind == "TaskDefinition":
            family, number = c.ecs_name, c.obj.revision
            c.revision = Revision(family, number, c.model.ecs_part(), c.model.kubernetes,
                                  task_definition_arn(settings, family, number))
            index.setdefault(family, {})[number] = c
    return index


def _translate(c: Conversion, to: Target, settings: Settings, revisions: dict[str, dict[int, Conversion]],
               out: Outcome) -> list[InputProblem]:
    kind = c.obj.kind
    if kind == "TaskDefinition":
        return _task_definition(c, settings, out)
    if kind == "Service":  # the workload policy is the operator's (per namespace): convert warns
        out.warnings += [InputProblem(c.obj.document.where, c.obj.file_path(p.path), p.message)
                         for p in service_policy_violations(c.model, WorkloadPolicy(), settings.load_balancer_service_type)]
    if kind in ("Service", "Task"):
        return _launch(c, to, settings, revisions)
    c.fields = FidelityReport(kind).entries(_ecs_json(c))
    c.note = f"a {kind} is kept by the operator as a custom resource: no plain Kubernetes objects"
    return []


def _ecs_json(c: Conversion) -> dict[str, Any]:
    """The ECS fields of the input (the report's subject): the Kubernetes extension is not ECS."""
    return {k: v for k, v in c.obj.spec.items() if k != "kubernetes"}


def _task_definition(c: Conversion, settings: Settings, out: Outcome) -> list[InputProblem]:
    assert c.revision is not None
    translation = pod_template(c.revision, for_service=False, storage=settings.storage_classes)
    c.fields = translation.report.entries(_ecs_json(c))
    metadata: dict[str, Any] = {"name": c.name, "labels": dict(translation.template["metadata"]["labels"])}
    c.objects = [{"apiVersion": "v1", "kind": "PodTemplate", "metadata": metadata, "template": translation.template}]
    notes = ["networkMode none: the operator adds a deny-all NetworkPolicy for the Pods of each task and service"
             if translation.isolated else "",
             "FireLens: the operator adds the log router's configuration, ConfigMap <Task or Service name>-firelens, for "
             "each task and service (convert a service or run-task input with it to see it)" if translation.router else ""]
    if any(notes):
        c.note = "; ".join(n for n in notes if n)
    out.warnings += [InputProblem(c.obj.document.where, c.obj.file_path(p.path), p.message)
                     for p in policy_violations(c.revision.definition, c.revision.kubernetes, WorkloadPolicy())]
    # what registration refuses beyond ECS's rules (translate/pod_checks.registration_problems), on this translation
    return [InputProblem(c.obj.document.where, c.obj.file_path(p.path), p.message)
            for p in translation_problems(c.revision.definition, translation)]


def _launch(c: Conversion, to: Target, settings: Settings,
            revisions: dict[str, dict[int, Conversion]]) -> list[InputProblem]:
    """Services and tasks: translated with the task definition they name, when the run has it."""
    where, ref = c.obj.document.where, c.model.taskDefinition
    found, why = _resolve(ref, revisions)
    if found is None:
        c.fields = FidelityReport(c.obj.kind).entries(_ecs_json(c))
        c.task_definition = {"reference": ref, "resolved": None, "note": why}
        if to == "k8s":
            return [InputProblem(where, c.obj.file_path("taskDefinition"), why)]
        return []
    assert found.revision is not None
    c.task_definition = {"reference": ref, "resolved": found.revision.name, "file": found.obj.document.file,
                         "index": found.index, "note": f"its fields are reported with it ({found.label})"}
    mapped = _mapped_reference(c, ref, found) if to == "crs" else None
    if mapped is not None:
        c.task_definition["applied"] = mapped[0]
    cluster, namespace = c.model.cluster or DEFAULT_CLUSTER, c.namespace or ""
    plan: ServicePlan | TaskPlan
    if c.obj.kind == "Service":
        from ecs_operator.translate.service import service_objects  # only runs with services need it
        from ecs_operator.translate.service_connect import connect_namespace

        # no ClusterIPs before anything is applied: the operator adds the dotted names' hostAliases
        plan = service_objects(c.model, name=c.name, namespace=namespace, revision=found.revision, cluster=cluster,
                               settings=settings, policy=ALLOW_ALL,  # refusals are warnings here
                               connect_namespace=connect_namespace(c.model, None) or "")
        c.objects = [*storage_objects(plan.claims, namespace, None), *plan.workloads, *plan.services, *plan.extra]
        entries = plan.template_report.entries(_ecs_json(found))
        c.task_definition.update(note=f"its fields as this service runs them ({found.label})",
                                 summary=summarize(entries), fields=[e.to_json() for e in entries])
    else:
        from ecs_operator.translate.task import task_pods

        plan = task_pods(c.model, name=c.name, namespace=namespace, revision=found.revision, cluster=cluster,
                         settings=settings, policy=ALLOW_ALL)
        c.objects = [*storage_objects(plan.claims, namespace, None), *plan.pods, *plan.extra]
    if mapped is not None:
        plan.report.approximated("taskDefinition", f"taskDefinition {mapped[0]}", mapped[1])
    c.fields = plan.report.entries(_ecs_json(c))
    c.note = _maintained_labels_note(c.objects) or c.note
    if any(claim.csi is not None for claim in plan.claims) and not namespace:
        c.note = (c.note + "; " if c.note else "") + ("EFS volumes: convert with --namespace to get the PersistentVolume "
                                                      "pre-bound to each claim (docs/volumes.md)")
    return [InputProblem(where, _problem_path(c, p.path), p.message) for p in plan.problems]


def _maintained_labels_note(objects: list[dict[str, Any]]) -> str:
    """What the Pods require that only the running operator provides: its memberOf node labels
    (docs/ecs-semantics.md §memberOf is evaluated at placement time)."""
    found: dict[str, str] = {}
    for obj in objects:
        pod = obj if obj["kind"] == "Pod" else (obj.get("spec") or {}).get("template") or {}
        meta = pod.get("metadata") or {}
        found.update({k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith(L.MEMBER_OF_PREFIX)})
    if not found:
        return ""
    labels = "; ".join(f"{k}=true where {v!r} holds" for k, v in found.items())
    return (f"the Pods require node labels the operator maintains on the container instances ({labels}): without the "
            "operator no node carries them and the Pods stay Pending")


def _mapped_reference(c: Conversion, ref: str, found: Conversion) -> tuple[str, str] | None:
    """A revision number in the input is the source account's: the operator numbers the revisions it
    registers itself (a new TaskDefinition registers family:1), so `family:42` would name nothing once
    applied. The custom resource names the family instead: its latest ACTIVE revision, the one this run's
    TaskDefinition registers (docs/conversion.md). Returns that reference and the report's note."""
    family, number = parse_task_definition_ref(ref)
    if "revision" not in found.obj.dropped or (number is None and not ref.startswith("arn:")):
        return None  # no number of the source account's (a RegisterTaskDefinition input is family:1 here too)
    return family, (
        f"{ref!r} names the source account's revision {found.obj.revision} of {found.label}; the operator numbers "
        f"the revisions it registers itself ({family}:1 for a new TaskDefinition), so the {c.obj.kind} names the "
        f"family {family!r}: its latest ACTIVE revision, the one that TaskDefinition registers once applied")


def _problem_path(c: Conversion, path: str) -> str:
    """Translation problems name the service's or task's field, or `taskDefinition.<field>` of the revision."""
    return path if path.startswith("taskDefinition.") else c.obj.file_path(path)


def _resolve(ref: str | None, revisions: dict[str, dict[int, Conversion]]) -> tuple[Conversion | None, str]:
    if not ref:
        return None, "no taskDefinition given"
    try:
        family, number = parse_task_definition_ref(ref)
    except ValueError as e:
        return None, str(e)
    known = revisions.get(family, {})
    if number is None and known:
        return known[max(known)], ""
    if number in known:
        return known[number], ""
    have = f" (the inputs have {', '.join(f'{family}:{n}' for n in sorted(known))})" if known else ""
    return None, (f"task definition {ref!r} is not among the inputs{have}: give its file in the same run, "
                  "e.g. `ecs-operator convert --to k8s service.json taskdef.json`")
