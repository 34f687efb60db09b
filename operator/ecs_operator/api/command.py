"""`ecs-operator api`: serve ECS's API (for aws-cli and boto3) on the custom resources of the current kubeconfig."""

from __future__ import annotations

import argparse
import logging
import os

from ecs_operator.settings import Settings

from .keys import DEFAULT_SECRET


def add_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument("--host", default=env("ECS_API_HOST", "127.0.0.1"), help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=int(env("ECS_API_PORT", "8085")), help="port (default: %(default)s)")
    parser.add_argument("--namespace", default=env("POD_NAMESPACE", "ecs-system"),
                        help="namespace of the access-key Secret (default: %(default)s)")
    parser.add_argument("--keys-secret", default=env("ECS_API_KEYS_SECRET", DEFAULT_SECRET),
                        help="name of the access-key Secret (default: %(default)s)")
    parser.add_argument("--region", default=env("ECS_OPERATOR_REGION", Settings.region), help="region in ARNs (as the operator's)")
    parser.add_argument("--account-id", default=env("ECS_OPERATOR_ACCOUNT_ID", Settings.account_id),
                        help="account in ARNs (as the operator's)")


def run(args: argparse.Namespace) -> int:
    from aiohttp import web

    from ecs_operator.adapters.kube import Kube

    from .keys import KeyStore
    from .server import make_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    kube = Kube()
    app = make_app(kube, KeyStore(kube, args.namespace, args.keys_secret), Settings(region=args.region, account_id=args.account_id))
    web.run_app(app, host=args.host, port=args.port, print=lambda _: logging.info(
        "ECS API on http://%s:%d (keys: Secret %s/%s)", args.host, args.port, args.namespace, args.keys_secret))
    return 0
