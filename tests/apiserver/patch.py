"""PATCH bodies for the Kubernetes API stand-in: strategic merge, JSON merge (RFC 7386), JSON patch.

Test infrastructure. Strategic merge covers what kubectl sends for `rollout restart`, `set image`,
`cordon` and `scale`: maps merge, lists of named items merge by their key, `$patch` and
`$setElementOrder` directives are honoured to the extent those commands use them.
"""

from __future__ import annotations

import copy
from typing import Any

# List fields whose items merge by a key instead of being replaced (the k8s patchMergeKey tags).
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "env": "name", "volumes": "name", "volumeMounts": "mountPath", "ports": "containerPort",
    "imagePullSecrets": "name", "conditions": "type", "taints": "key", "tolerations": "key",
    "ownerReferences": "uid", "finalizers": "",
}


class PatchError(ValueError):
    """A patch that cannot be applied: answered as 422/400 by the server."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def strategic_merge_patch(target: Any, patch: Any, field: str = "") -> Any:
    """Kubernetes strategic merge patch, for the built-in types' common merge keys."""
    if isinstance(patch, dict):
        if patch.get("$patch") == "replace":
            return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
        if patch.get("$patch") == "delete":
            return None
        out = copy.deepcopy(target) if isinstance(target, dict) else {}
        for key, value in patch.items():
            if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
                continue
            if key.startswith("$deleteFromPrimitiveList/"):
                name = key.split("/", 1)[1]
                out[name] = [v for v in out.get(name, []) if v not in value]
                continue
            if value is None:
                out.pop(key, None)
                continue
            merged = strategic_merge_patch(out.get(key), value, key)
            if merged is None and isinstance(value, dict):
                out.pop(key, None)
            else:
                out[key] = merged
        return out
    if isinstance(patch, list):
        key = MERGE_KEYS.get(field)
        if field == "finalizers":
            return list(dict.fromkeys([*(target or []), *patch]))
        if not key or not isinstance(target, list):
            return [x for x in copy.deepcopy(patch)
                    if not (isinstance(x, dict) and x.get("$patch"))]
        out_list = copy.deepcopy(target)
        for item in patch:
            if not isinstance(item, dict) or key not in item:
                raise PatchError(f"map: {item!r} does not contain declared merge key: {key}")
            idx = next((i for i, old in enumerate(out_list)
                        if isinstance(old, dict) and old.get(key) == item[key]), None)
            if item.get("$patch") == "delete":
                if idx is not None:
                    out_list.pop(idx)
                continue
            if idx is None:
                out_list.append({k: v for k, v in item.items() if not k.startswith("$")})
            else:
                out_list[idx] = strategic_merge_patch(out_list[idx], item, field)
        return out_list
    return copy.deepcopy(patch)


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> Any:
    cur = doc
    for p in parts[:-1]:
        if isinstance(cur, list):
            cur = cur[int(p)]
        elif isinstance(cur, dict) and p in cur:
            cur = cur[p]
        else:
            raise PatchError(f"doc is missing path: /{'/'.join(parts)}")
    return cur


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch: add, remove, replace, test, move, copy."""
    if not isinstance(ops, list):
        raise PatchError("JSON patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        kind, parts = op.get("op"), _pointer(op.get("path", ""))
        if kind in ("move", "copy"):
            src = _pointer(op["from"])
            value = copy.deepcopy(_get(doc, src))
            if kind == "move":
                doc = _remove(doc, src)
            doc = _add(doc, parts, value)
        elif kind == "add":
            doc = _add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            doc = _remove(doc, parts)
        elif kind == "replace":
            _get(doc, parts)  # replace needs the path to exist
            doc = _remove(doc, parts) if parts else doc
            doc = _add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind == "test":
            if _get(doc, parts) != op.get("value"):
                raise PatchError(f"testing value {op.get('path')} failed")
        else:
            raise PatchError(f"unexpected kind: {kind}")
    return doc


def _get(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return doc
    parent = _parent(doc, parts)
    last = parts[-1]
    try:
        return parent[int(last)] if isinstance(parent, list) else parent[last]
    except (KeyError, IndexError, ValueError):
        raise PatchError(f"doc is missing key: /{'/'.join(parts)}") from None


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _parent(doc, parts)
    last = parts[-1]
    if isinstance(parent, list):
        parent.insert(len(parent) if last == "-" else int(last), value)
    else:
        parent[last] = value
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    _get(doc, parts)
    parent = _parent(doc, parts)
    last = parts[-1]
    if isinstance(parent, list):
        parent.pop(int(last))
    else:
        del parent[last]
    return doc


def apply_patch(content_type: str, target: dict[str, Any], body: Any) -> dict[str, Any]:
    """Apply a PATCH body of the given content type to a stored object."""
    ct = content_type.split(";")[0].strip()
    if ct == "application/strategic-merge-patch+json":
        result = strategic_merge_patch(target, body)
    elif ct == "application/merge-patch+json":
        result = merge_patch(target, body)
    elif ct == "application/json-patch+json":
        result = json_patch(target, body)
    else:
        raise PatchError(f"unsupported patch type {ct!r}")
    if not isinstance(result, dict):
        raise PatchError("patch did not produce an object")
    return result
