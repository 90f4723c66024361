"""deploy/ (docs/guides/team-service.md, "Running mockcore for a team"): the compose file and the Kubernetes
manifest parse as YAML and describe PostgreSQL, three mockcore replicas and HAProxy; every mockcore command in them
is a `mockcore serve` command line that the real command accepts (run with its PostgreSQL URL pointed at a closed
loopback port: it must get as far as connecting, i.e. no usage error); deploy/haproxy.cfg passes `haproxy -c`,
as does the configuration the replica test derives from it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from mockcore.cli import main
from tests import haproxy
from tests.serving import free_port

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
PLACEHOLDER_RE = re.compile(r"\$\{(\w+)(?::\?[^}]*)?\}|\$\((\w+)\)")  # compose's ${VAR:?msg}, Kubernetes' $(VAR)


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text()))


def kubernetes() -> list[dict[str, Any]]:
    manifest = yaml.safe_load((DEPLOY / "kubernetes.yaml").read_text())  # one document: a List
    assert (manifest["apiVersion"], manifest["kind"]) == ("v1", "List")
    return list(manifest["items"])


def kubernetes_container(kind: str, name: str) -> dict[str, Any]:
    doc = next(d for d in kubernetes() if d["kind"] == kind and d["metadata"]["name"] == name)
    return dict(doc["spec"]["template"]["spec"]["containers"][0])


def serve_args(args: list[str]) -> list[str]:
    """The command with its placeholders filled and its PostgreSQL URL pointed at a closed loopback port."""
    filled = [PLACEHOLDER_RE.sub("secret", str(arg)) for arg in args]
    return [
        re.sub(r"@[^/@]+/", f"@127.0.0.1:{free_port()}/", arg) if arg.startswith("postgresql://") else arg
        for arg in filled
    ]


def test_the_compose_file_runs_postgresql_three_replicas_and_haproxy() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "mockcore", "haproxy"}
    assert services["mockcore"]["deploy"]["replicas"] == 3
    assert "--tenants" in services["mockcore"]["command"]
    assert services["mockcore"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in services["postgres"]
    assert "MOCKCORE_CONTROL_TOKEN" in services["mockcore"]["environment"]
    assert any(v.endswith("haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro") for v in services["haproxy"]["volumes"])
    assert all(port.startswith("127.0.0.1:") for port in services["haproxy"]["ports"])  # loopback unless you choose
    assert "ports" not in services["mockcore"] and "ports" not in services["postgres"]  # only the proxy is published


def test_the_kubernetes_manifest_runs_postgresql_three_replicas_and_haproxy() -> None:
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in kubernetes()}
    assert {("StatefulSet", "postgres"), ("Deployment", "mockcore"), ("Deployment", "haproxy")} <= kinds
    assert {("Service", "mockcore"), ("Service", "mockcore-replicas"), ("Service", "postgres")} <= kinds
    replicas = next(d for d in kubernetes() if d["kind"] == "Deployment" and d["metadata"]["name"] == "mockcore")
    assert replicas["spec"]["replicas"] == 3
    container = kubernetes_container("Deployment", "mockcore")
    assert container["readinessProbe"]["httpGet"]["path"] == "/_mock/health"
    token = next(e for e in container["env"] if e["name"] == "MOCKCORE_CONTROL_TOKEN")
    assert token["valueFrom"]["secretKeyRef"]["name"] == "mockcore"


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(compose()["services"]["mockcore"]["command"], id="compose"),
        pytest.param(kubernetes_container("Deployment", "mockcore")["args"], id="kubernetes"),
    ],
)
def test_each_mockcore_command_is_a_valid_serve_command_line(args: list[str]) -> None:
    assert args[0] == "serve"
    result = CliRunner().invoke(main, serve_args(args))
    assert result.exit_code == 1, result.output  # 2 would be a usage error; 1: it tried PostgreSQL
    assert "cannot use it" in result.output and "Connection refused" in result.output, result.output


def test_haproxy_accepts_the_deploy_configuration_and_the_test_one_derived_from_it() -> None:
    haproxy.require("haproxy")
    text = (DEPLOY / "haproxy.cfg").read_text()
    checked = haproxy.check(text, {"MOCKCORE_REPLICAS": "mockcore:8008"})
    assert checked.returncode == 0, checked.stdout + checked.stderr
    derived = haproxy.config(free_port(), [("127.0.0.1", free_port()) for _ in range(3)], balance="roundrobin")
    checked = haproxy.check(derived)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for line in ("option httpchk GET /_mock/health", "timeout http-request 10s", "option redispatch 1"):
        assert line in derived and line in text
    assert "monitor-uri /_proxy/health" in text  # what the Kubernetes manifest's HAProxy probe asks
