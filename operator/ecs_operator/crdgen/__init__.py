"""CustomResourceDefinitions generated from the models (the models are their single source)."""

from .crd import crd_for, render_all

__all__ = ["crd_for", "render_all"]
