"""`ecs-operator api`: serve ECS's API (for aws-cli and boto3) on the custom resources of the current kubeconfig."""

from __future__ import annotations

import argparse
import logging
import os
import ssl

from ecs_operator.settings import Settings

from .keys import DEFAULT_SECRET


def add_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument("--host", default=env("ECS_API_HOST", "127.0.0.1"), help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=env("ECS_API_PORT", "8085"), help="port (default: %(default)s)")
    parser.add_argument("--namespace", default=env("POD_NAMESPACE", "ecs-system"),
                        help="namespace of the access-key Secret (default: %(default)s)")
    parser.add_argument("--keys-secret", default=env("ECS_API_KEYS_SECRET", DEFAULT_SECRET),
                        help="name of the access-key Secret (default: %(default)s)")
    parser.add_argument("--region", default=env("ECS_OPERATOR_REGION", Settings.region),
                        help="region in ARNs (as the operator's)")
    parser.add_argument("--account-id", default=env("ECS_OPERATOR_ACCOUNT_ID", Settings.account_id),
                        help="account in ARNs (as the operator's)")
    parser.add_argument("--tls-cert", default=env("ECS_API_TLS_CERT"),
                        help="PEM certificate (chain): serve HTTPS (with --tls-key)")
    parser.add_argument("--tls-key", default=env("ECS_API_TLS_KEY"), help="PEM private key of --tls-cert")


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A server context of TLS 1.2 and later, as AWS's endpoints require."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def run(args: argparse.Namespace) -> int:
    from aiohttp import web

    if bool(args.tls_cert) != bool(args.tls_key):
        logging.error("--tls-cert and --tls-key go together: give both (HTTPS) or neither (HTTP)")
        return 2
    try:
        context = tls_context(args.tls_cert, args.tls_key) if args.tls_cert else None
    except (OSError, ssl.SSLError) as e:
        logging.error("--tls-cert %s / --tls-key %s: %s", args.tls_cert, args.tls_key, e)
        return 2

    from ecs_operator.adapters.kube import Kube
    from ecs_operator.adapters.transport import ConfigError

    from .keys import KeyStore
    from .server import make_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        kube = Kube()
    except ConfigError as e:
        logging.error("no usable kubeconfig or in-cluster configuration: %s", e)
        return 2
    keys = KeyStore(kube, args.namespace, args.keys_secret)
    keys.start()
    app = make_app(kube, keys, Settings(region=args.region, account_id=args.account_id))
    web.run_app(app, host=args.host, port=args.port, ssl_context=context, print=lambda _: logging.info(
        "ECS API on %s://%s:%d (keys: Secret %s/%s)", "https" if context else "http", args.host, args.port,
        args.namespace, args.keys_secret))
    return 0
