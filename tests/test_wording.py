"""Door-specific wording (rag_k8s.wording) and the policy's `allowed_namespaces`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rag_k8s import wording
from rag_k8s.policy import allowed_namespaces, load_policy

ORG = Path(__file__).resolve().parent.parent / "org"
CONFIRM_REASON = "scale is medium risk: it runs only when confirmed (constraints.confirm)"


@pytest.mark.parametrize(
    ("door", "confirmed", "expected"),
    [
        ("api", False, CONFIRM_REASON),
        ("api", True, CONFIRM_REASON),
        ("cli", False, "scale is medium risk: it runs only when confirmed (--yes)"),
        ("cli", True, "scale is medium risk: confirmed (--yes)"),
    ],
)
def test_confirmation_reason_per_door(door: wording.Door, confirmed: bool, expected: str) -> None:
    assert wording.for_door(CONFIRM_REASON, door, confirmed=confirmed) == expected


def test_every_api_constraint_has_the_cli_flag() -> None:
    text = ("use constraints.dryRun, or raise constraints.timeout, then confirm with "
            "constraints.confirm and constraints.previewDigest")
    assert wording.for_door(text, "cli") == ("use --dry-run, or raise --timeout, then confirm "
                                             "with --yes and --preview-digest")
    assert wording.for_door(text, "api") == text


@pytest.mark.parametrize(
    ("payload", "hints"),
    [
        ({"intent": "scael"}, ["did you mean --intent scale?"]),
        ({"intent": "rollout-stats"}, ["did you mean --intent rollout-status?"]),
        ({"resource": "deploymnet"}, ["did you mean --resource deployment?"]),
        ({"resource": "deploymnets"}, ["did you mean --resource deployment?"]),
        ({"resource": "statefulsset"}, ["did you mean --resource statefulset?"]),
        ({"params": {"replica": 3}}, ["did you mean -p replicas=3?"]),
        ({"params": {"imgae": "nginx:1.27"}}, ["did you mean -p image=nginx:1.27?"]),
        ({"namespace": "stagign"}, ["did you mean -n staging?"]),
        ({"namespace": "kube-system"}, []),  # unlisted and close to nothing: no guess
        ({"intent": "get", "resource": "pod", "namespace": "dev"}, []),
        ({"intent": "zzzz", "resource": "qqqq", "params": {"xyz": 1}}, []),
    ],
)
def test_did_you_mean_for_cli(payload: dict[str, Any], hints: list[str]) -> None:
    namespaces = load_policy(ORG).namespaces
    assert wording.request_hints(payload, "cli", namespaces=namespaces) == hints


def test_did_you_mean_for_the_api_names_the_fields() -> None:
    assert wording.request_hints({"resource": "deploymnet", "params": {"replica": 3}}, "api") == [
        'did you mean "resource": "deployment"?', 'did you mean "params": {"replicas": 3}?']


@pytest.mark.parametrize(
    ("intent", "kind", "namespaces"),
    [
        ("scale", "deployment", ["staging", "dev"]),
        ("restart", "deployment", ["prod", "staging", "dev"]),
        ("delete", "deployment", ["dev"]),
        ("delete", "job", ["staging", "dev"]),
        ("get", "node", []),  # cluster-scoped kinds are not per-namespace
    ],
)
def test_allowed_namespaces_from_the_default_policy(intent: str, kind: str,
                                                    namespaces: list[str]) -> None:
    assert allowed_namespaces(load_policy(ORG), intent, kind) == namespaces


def _denied(argv: list[str], reason: str) -> dict[str, Any]:
    return {"status": "denied", "plan": {"argv": argv}, "decision": {"reasons": [reason]}}


def test_where_allowed_names_the_other_namespaces() -> None:
    policy = load_policy(ORG)
    result = _denied(["kubectl", "scale", "deployment/api", "--replicas=3", "-n", "prod"],
                     "namespace 'prod' does not allow scale on deployment")
    assert wording.where_allowed(result, policy) == "scale on deployment is allowed in staging and dev"
    result = _denied(["kubectl", "delete", "deployment/api", "-n", "staging"],
                     "namespace 'staging' does not allow delete on deployment")
    assert wording.where_allowed(result, policy) == "delete on deployment is allowed in dev"


def test_where_allowed_stays_silent_for_other_refusals() -> None:
    policy = load_policy(ORG)
    guardrail = _denied(["kubectl", "delete", "pod/api-7d9f8b6c5-x2x9z", "-n", "dev"],
                        "deleting a pod is refused")
    assert wording.where_allowed(guardrail, policy) is None
    executed = {**guardrail, "status": "executed"}
    assert wording.where_allowed(executed, policy) is None
