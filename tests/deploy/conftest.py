"""Fixtures for the deploy commands: the pinned CDK CLI (the real one, never a stand-in) and a
moto server that it and boto3 reach over HTTP.

The server listens on 127.0.0.1, but everything is pointed at it by the host name `localhost`:
moto's CloudFormation reads the template URLs the CLI hands it (S3 URLs on the endpoint) by host
name, and answers NoSuchBucket for an IP address. `moto_mends` mends the four bugs of moto's
CloudFormation that stop the CLI from deploying an environment stack.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from deployline.deploy.cdk import CdkCli, find_cli

from . import moto_mends

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account


@pytest.fixture(scope="session")
def cdk_cli() -> CdkCli:
    """The pinned CLI: node_modules at the repository root (make test runs npm ci), else the
    cache, installed on first use."""
    return find_cli(ROOT)


@dataclass(frozen=True)
class Moto:
    url: str

    def client(self, service: str, **kwargs: Any) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=self.url, **kwargs)


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    """A moto server for the module, and the environment that points boto3 and the CDK CLI at it
    with fake credentials (no profile, no real AWS)."""
    with pytest.MonkeyPatch.context() as mp:
        moto_mends.mend(mp)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        _, port = server.get_host_and_port()
        url = f"http://localhost:{port}"
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"))
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": url,
            "CDK_DISABLE_CLI_TELEMETRY": "true",
        }.items():
            mp.setenv(name, value)
        mp.delenv("AWS_PROFILE", raising=False)
        try:
            yield Moto(url)
        finally:
            server.stop()
