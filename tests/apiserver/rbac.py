"""Authentication (a kube-apiserver style token file) and RBAC for the Kubernetes API stand-in.

Test infrastructure. Users come from `tokens.csv` (`token,user,uid,"group1,group2"`, the format of
kube-apiserver's --token-auth-file); members of `system:masters` may do everything; everyone else
gets what the stored Roles/RoleBindings and ClusterRoles/ClusterRoleBindings grant.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable


@dataclass(frozen=True)
class User:
    name: str
    uid: str
    groups: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Attributes:
    """What one request asks to do, as kube-apiserver's authorizer sees it."""

    verb: str
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""  # non-resource requests only

    @property
    def resource_request(self) -> bool:
        return bool(self.resource)

    @property
    def full_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def read_tokens(path: Path) -> dict[str, User]:
    users: dict[str, User] = {}
    with path.open(newline="") as f:
        for row in csv.reader(f):
            if len(row) < 3:
                continue
            groups = tuple(g for g in (row[3].split(",") if len(row) > 3 else []) if g)
            users[row[0]] = User(row[1], row[2], groups)
    return users


def write_tokens(path: Path, entries: Iterable[tuple[str, User]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        for token, user in entries:
            writer.writerow([token, user.name, user.uid, ",".join(user.groups)])
    path.chmod(0o600)


def _rule_allows(rule: dict[str, Any], attrs: Attributes) -> bool:
    verbs = rule.get("verbs") or []
    if "*" not in verbs and attrs.verb not in verbs:
        return False
    if not attrs.resource_request:
        urls = rule.get("nonResourceURLs") or []
        return any(u == "*" or u == attrs.path or (u.endswith("*") and attrs.path.startswith(
            u[:-1])) for u in urls)
    groups = rule.get("apiGroups")
    if groups is None or ("*" not in groups and attrs.group not in groups):
        return False
    resources = rule.get("resources") or []
    if not ("*" in resources or attrs.full_resource in resources
            or (attrs.subresource and f"*/{attrs.subresource}" in resources)):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


def _binds(subjects: list[dict[str, Any]], user: User) -> bool:
    for s in subjects or []:
        if s.get("kind") == "User" and s.get("name") == user.name:
            return True
        if s.get("kind") == "Group" and s.get("name") in user.groups:
            return True
    return False


# Lookup of stored RBAC objects: (plural, namespace or "") -> list of objects.
Lister = Callable[[str, str], list[dict[str, Any]]]


def authorize(user: User, attrs: Attributes, lister: Lister) -> bool:
    """True when RBAC allows `user` to do `attrs`."""
    if "system:masters" in user.groups:
        return True
    # Discovery, version and openapi are open to every authenticated user (system:discovery).
    if not attrs.resource_request:
        if attrs.path in ("/api", "/apis", "/version", "/healthz", "/livez", "/readyz") or \
                attrs.path.startswith(("/api/", "/apis/", "/openapi/")):
            return True
    if attrs.group == "authorization.k8s.io" and attrs.resource.startswith("selfsubject"):
        return True  # system:basic-user
    cluster_roles = {r["metadata"]["name"]: r for r in lister("clusterroles", "")}

    def rules_of(ref: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
        if ref.get("kind") == "ClusterRole":
            return list(cluster_roles.get(ref.get("name", ""), {}).get("rules") or [])
        roles = {r["metadata"]["name"]: r for r in lister("roles", namespace)}
        return list(roles.get(ref.get("name", ""), {}).get("rules") or [])

    for crb in lister("clusterrolebindings", ""):
        if _binds(crb.get("subjects"), user) and any(
                _rule_allows(r, attrs) for r in rules_of(crb.get("roleRef", {}), "")):
            return True
    if attrs.namespace:
        for rb in lister("rolebindings", attrs.namespace):
            if _binds(rb.get("subjects"), user) and any(
                    _rule_allows(r, attrs) for r in rules_of(rb.get("roleRef", {}),
                                                             attrs.namespace)):
                return True
    return False


def forbidden_message(user: User, attrs: Attributes, group_resource: str) -> str:
    """kube-apiserver's Forbidden message, word for word."""
    if not attrs.resource_request:
        return (f'forbidden: User "{user.name}" cannot {attrs.verb} path "{attrs.path}"')
    subject = f'{group_resource} "{attrs.name}"' if attrs.name else group_resource
    scope = (f'in the namespace "{attrs.namespace}"' if attrs.namespace
             else "at the cluster scope")
    return (f'{subject} is forbidden: User "{user.name}" cannot {attrs.verb} resource '
            f'"{attrs.full_resource}" in API group "{attrs.group}" {scope}')


def rules_for(user: User, namespace: str, lister: Lister) -> list[dict[str, Any]]:
    """The resource rules that apply to `user` in `namespace` (SelfSubjectRulesReview)."""
    if "system:masters" in user.groups:
        return [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
    cluster_roles = {r["metadata"]["name"]: r for r in lister("clusterroles", "")}
    roles = {r["metadata"]["name"]: r for r in lister("roles", namespace)}
    out: list[dict[str, Any]] = []
    bindings = [*lister("clusterrolebindings", ""), *lister("rolebindings", namespace)]
    for b in bindings:
        if not _binds(b.get("subjects"), user):
            continue
        ref = b.get("roleRef", {})
        source = cluster_roles if ref.get("kind") == "ClusterRole" else roles
        out.extend(source.get(ref.get("name", ""), {}).get("rules") or [])
    out.append({"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
                "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]})
    return out
