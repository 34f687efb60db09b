"""Options for the whole test tree (registered here so `pytest --kubeconfig ...` works from the root)."""

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--kubeconfig", default=None,
                     help="run the e2e tests against this running sandbox instead of starting one")
