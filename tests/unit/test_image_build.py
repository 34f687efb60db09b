"""The operator image's build (`sandbox image build`): its cache key, the Debian mirror it takes from the host's
apt sources, and the Dockerfile's BASE argument it relies on."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ecs_operator.sandbox import image_build

ROOT = Path(__file__).resolve().parents[2]


def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for name in ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, root / name)
    (root / "operator" / "pkg").mkdir(parents=True)
    (root / "operator" / "pkg" / "a.py").write_text("x = 1\n")
    return root


def test_the_key_follows_what_the_dockerfile_copies_and_nothing_else(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    key = image_build.image_key(root)
    (root / "operator" / "pkg" / "__pycache__").mkdir()
    (root / "operator" / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    (root / "operator" / "x.egg-info").mkdir()
    (root / "operator" / "x.egg-info" / "PKG-INFO").write_text("y")
    (root / "tests").mkdir()
    (root / "tests" / "t.py").write_text("not copied")
    assert image_build.image_key(root) == key
    (root / "operator" / "pkg" / "a.py").write_text("x = 2\n")
    changed = image_build.image_key(root)
    assert changed != key
    (root / "Dockerfile").write_text((root / "Dockerfile").read_text() + "\n# edited\n")
    assert image_build.image_key(root) not in (key, changed)


def test_the_dockerfile_takes_the_base_as_an_argument_defaulting_to_python_slim() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines[:2] == ["ARG BASE=python:3.11-slim", "FROM ${BASE}"]
    assert "USER 10001:10001" in lines


def test_the_mirror_comes_from_the_hosts_apt_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    assert image_build.debian_mirror(tmp_path) is None  # debootstrap's default then
    (tmp_path / "sources.list").write_text("deb [arch=amd64] http://mirror.example/debian bookworm main\n")
    assert image_build.debian_mirror(tmp_path) == "http://mirror.example/debian"
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://other.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\n# a comment\nURIs: http://other.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n")
    assert image_build.debian_mirror(tmp_path) == "http://other.example/debian"


def test_cached_images_are_found_by_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = checkout(tmp_path)
    assert image_build.cached(root) is None
    key = image_build.image_key(root)
    archive = image_build.cache_root() / f"ecs-operator-{key}.oci.tar"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"")
    image = image_build.cached(root)
    assert image is not None and image.archive == archive
    assert (image.repository, image.tag) == ("localhost/ecs-operator", f"sandbox-{key}")
