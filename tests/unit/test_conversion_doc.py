"""Generated files are up to date: docs/conversion.md (from the mapping table) and the CRDs (from the models)."""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
from pathlib import Path

from ecs_operator.cli import main
from ecs_operator.models import KINDS
from ecs_operator.crdgen import matrix
from ecs_operator.translate.mapping import TABLES

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / matrix.DOC


def test_conversion_doc_is_up_to_date() -> None:
    assert DOC.read_text() == matrix.render(), "run `python -m ecs_operator.crdgen.matrix`"


def test_conversion_doc_lists_every_table_row() -> None:
    text = DOC.read_text()
    for kind, rows in TABLES.items():
        assert f"## {kind} (" in text
        for path, verdict, _, _ in rows:
            assert f"| `{path}` |" in text, path
    assert "Secrets Manager" in text and "bucket-path-app-env" in text  # the naming conventions


def test_matrix_check_command(tmp_path: Path) -> None:
    stale = tmp_path / "conversion.md"
    stale.write_text("old\n")
    command = [sys.executable, "-m", "ecs_operator.crdgen.matrix", "--check"]
    refused = subprocess.run([*command, "--out", str(stale)], capture_output=True, text=True)
    assert refused.returncode == 1 and "out of date" in refused.stderr
    assert subprocess.run(command, capture_output=True, text=True, cwd=ROOT).returncode == 0


def test_crds_are_up_to_date() -> None:
    assert main(["crds", "--check", "--out", str(ROOT / "crds")]) == 0, "run `ecs-operator crds`"


def test_chart_crds_equal_crds() -> None:
    """The Helm chart ships the same CRDs, once it has a crds/ directory."""
    ours = {p.name: p.read_text() for p in (ROOT / "crds").glob("*.yaml")}
    assert len(ours) == len(KINDS)
    chart = ROOT / "charts" / "ecs-operator" / "crds"
    if chart.is_dir():
        theirs = {p.name: p.read_text() for p in chart.glob("*.yaml")}
        assert theirs == ours, "charts/ecs-operator/crds differs from crds/: run `ecs-operator crds`"


def test_model_fields_are_documented_with_field_descriptions() -> None:
    """A field's CRD description is its Field(description=...): an attribute docstring would reach no CRD."""
    docstrings = []
    for path in sorted((ROOT / "operator" / "ecs_operator" / "models").glob("*.py")):
        for cls in (n for n in ast.parse(path.read_text()).body if isinstance(n, ast.ClassDef)):
            docstrings += [f"{path.name}: {cls.name}.{field.target.id}" for field, doc in itertools.pairwise(cls.body)
                           if isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name)
                           and isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant)
                           and isinstance(doc.value.value, str) and cls.name != "Kind"]
    assert not docstrings, "use Field(description=...) instead of an attribute docstring: " + ", ".join(docstrings)
