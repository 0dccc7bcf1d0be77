"""The pack program itself: started as the Pulumi analyzer starts it, queried over gRPC.

The pack binds 127.0.0.1 on a free port and prints it, as the CLI expects; each test
starts one process and kills it by its pid when done.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from policy.rules import all_rules

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
MANDATORY, ADVISORY = 1, 0  # pulumirpc.EnforcementLevel
CLUSTER_URN = "urn:pulumi:dev::mlplatform::aws:eks/cluster:Cluster::eks"

# Hides the installed `policy` package, as on a machine where only the pack directory
# was published; the pack must then load its rules from its own directory.
_HIDE_INSTALLED = """
import importlib.abc, importlib.machinery, runpy, sys
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "policy":
            raise ModuleNotFoundError("no module named 'policy'", name=name)
        if name.startswith("policy."):
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is None:
                raise ModuleNotFoundError(f"no module named {name!r}", name=name)
            return spec
        return None
sys.meta_path.insert(0, Hide())
runpy.run_path(sys.argv[1], run_name="__main__")
"""


def _start(args: list[str], cwd: Path) -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    process = subprocess.Popen(
        [sys.executable, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.strip().isdigit():
            process.kill()
            _, err = process.communicate(timeout=30)
            pytest.fail(f"the pack did not start: {err.decode()[-2000:]}")
        with grpc.insecure_channel(f"127.0.0.1:{int(line)}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        process.kill()
        process.communicate(timeout=30)


@pytest.fixture(scope="module")
def pack() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """The pack as `pulumi preview --policy-pack policy` runs it: the directory as program."""
    yield from _start(["policy"], ROOT)


def _analyze(stub: Any, resource_type: str, props: dict[str, Any]) -> dict[str, int]:
    properties = struct_pb2.Struct()
    properties.update(props)
    request = analyzer_pb2.AnalyzeRequest(
        type=resource_type, properties=properties, urn=CLUSTER_URN, name="eks"
    )
    response = stub.Analyze(request, timeout=30)
    assert all(d.urn == CLUSTER_URN for d in response.diagnostics)
    return {d.policyName: d.enforcementLevel for d in response.diagnostics}


def test_pack_registers_every_rule_at_its_level(pack: Any) -> None:
    info = pack.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
    assert info.name == "mlplatform"
    levels = {p.name: p.enforcementLevel for p in info.policies}
    expected = {r.name: MANDATORY if r.level == "mandatory" else ADVISORY for r in all_rules()}
    assert levels == expected


def test_pack_reports_violations_and_skips_unknowns(pack: Any) -> None:
    cluster = {
        "vpcConfig": {"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]},
        "encryptionConfig": {"resources": ["secrets"], "provider": {"keyArn": UNKNOWN}},
        "enabledClusterLogTypes": ["api", "audit", "authenticator", "controllerManager"],
        "accessConfig": {
            "authenticationMode": "API",
            "bootstrapClusterCreatorAdminPermissions": False,
        },
        "upgradePolicy": {"supportType": "STANDARD"},
        "deletionProtection": True,
    }
    assert _analyze(pack, "aws:eks/cluster:Cluster", cluster) == {
        "eks-control-plane-logging": MANDATORY,
        "eks-public-endpoint-restricted": ADVISORY,
    }


def test_pack_stack_policies_flag_the_vpc_without_flow_log(pack: Any) -> None:
    vpc_urn = "urn:pulumi:dev::mlplatform::aws:ec2/vpc:Vpc::net"
    vpc = analyzer_pb2.AnalyzerResource(type="aws:ec2/vpc:Vpc", urn=vpc_urn, name="net")
    response = pack.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[vpc]), timeout=30)
    flagged = {(d.policyName, d.urn, d.enforcementLevel) for d in response.diagnostics}
    assert flagged == {
        ("vpc-flow-logs", vpc_urn, MANDATORY),
        ("vpc-default-sg-managed", vpc_urn, MANDATORY),
    }


def test_published_pack_directory_runs_on_its_own(tmp_path: Path) -> None:
    pack_dir = tmp_path / "mlplatform-pack"
    pack_dir.mkdir()
    for source in (ROOT / "policy").iterdir():
        if source.is_file():
            shutil.copy(source, pack_dir / source.name)
    for stub in _start(["-c", _HIDE_INSTALLED, str(pack_dir)], tmp_path):
        info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
        assert len(info.policies) == len(all_rules())
        kms = _analyze(stub, "aws:kms/key:Key", {"enableKeyRotation": False})
        assert kms == {"kms-key-rotation": MANDATORY}
