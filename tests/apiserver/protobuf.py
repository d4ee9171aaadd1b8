"""A small protobuf wire-format decoder for the Kubernetes API stand-in.

Test infrastructure. kubectl 1.32+ sends typed creates (SelfSubjectAccessReview, Eviction,
HorizontalPodAutoscaler) as `application/vnd.kubernetes.protobuf`; answering 415 gives no fallback.
The body is the 4-byte magic `k8s\\x00` and a `runtime.Unknown` (typeMeta=1, raw=2,
contentEncoding=3, contentType=4) whose `raw` is the object's own message. The schemas below are
the field numbers from k8s.io/api's generated.proto for the few messages the stand-in needs.
"""

from __future__ import annotations

from typing import Any, Union

MAGIC = b"k8s\x00"

# A schema maps a field number to (json name, type). Types: "string", "int", "bool", "bytes",
# ("map", value-type), ("list", type) or a nested schema dict.
Schema = dict[int, tuple[str, Any]]
FieldType = Union[str, tuple[str, Any], Schema]

TYPE_META: Schema = {1: ("apiVersion", "string"), 2: ("kind", "string")}
UNKNOWN: Schema = {1: ("typeMeta", TYPE_META), 2: ("raw", "bytes"),
                   3: ("contentEncoding", "string"), 4: ("contentType", "string")}
OWNER_REF: Schema = {1: ("kind", "string"), 3: ("name", "string"), 4: ("uid", "string"),
                     5: ("apiVersion", "string"), 6: ("controller", "bool")}
OBJECT_META: Schema = {
    1: ("name", "string"), 2: ("generateName", "string"), 3: ("namespace", "string"),
    5: ("uid", "string"), 6: ("resourceVersion", "string"), 7: ("generation", "int"),
    11: ("labels", ("map", "string")), 12: ("annotations", ("map", "string")),
    13: ("ownerReferences", ("list", OWNER_REF)), 14: ("finalizers", ("list", "string")),
}
RESOURCE_ATTRIBUTES: Schema = {
    1: ("namespace", "string"), 2: ("verb", "string"), 3: ("group", "string"),
    4: ("version", "string"), 5: ("resource", "string"), 6: ("subresource", "string"),
    7: ("name", "string"),
}
NON_RESOURCE_ATTRIBUTES: Schema = {1: ("path", "string"), 2: ("verb", "string")}
SSAR: Schema = {
    1: ("metadata", OBJECT_META),
    2: ("spec", {1: ("resourceAttributes", RESOURCE_ATTRIBUTES),
                 2: ("nonResourceAttributes", NON_RESOURCE_ATTRIBUTES)}),
}
SSRR: Schema = {1: ("metadata", OBJECT_META), 2: ("spec", {1: ("namespace", "string")})}
DELETE_OPTIONS: Schema = {
    1: ("gracePeriodSeconds", "int"), 3: ("orphanDependents", "bool"),
    4: ("propagationPolicy", "string"), 5: ("dryRun", ("list", "string")),
}
EVICTION: Schema = {1: ("metadata", OBJECT_META), 2: ("deleteOptions", DELETE_OPTIONS)}
QUANTITY: Schema = {1: ("string", "string")}
CROSS_VERSION_REF: Schema = {1: ("kind", "string"), 2: ("name", "string"),
                             3: ("apiVersion", "string")}
METRIC_TARGET: Schema = {1: ("type", "string"), 2: ("value", QUANTITY),
                         3: ("averageValue", QUANTITY), 4: ("averageUtilization", "int")}
HPA_V2: Schema = {
    1: ("metadata", OBJECT_META),
    2: ("spec", {
        1: ("scaleTargetRef", CROSS_VERSION_REF), 2: ("minReplicas", "int"),
        3: ("maxReplicas", "int"),
        4: ("metrics", ("list", {1: ("type", "string"),
                                 4: ("resource", {1: ("name", "string"),
                                                  2: ("target", METRIC_TARGET)})})),
    }),
}
HPA_V1: Schema = {
    1: ("metadata", OBJECT_META),
    2: ("spec", {1: ("scaleTargetRef", CROSS_VERSION_REF), 2: ("minReplicas", "int"),
                 3: ("maxReplicas", "int"), 4: ("targetCPUUtilizationPercentage", "int")}),
}
# `kubectl create deployment NAME --image=...` (k8s.io/api apps/v1 and core/v1 generated.proto).
CONTAINER_PORT: Schema = {1: ("name", "string"), 2: ("hostPort", "int"),
                          3: ("containerPort", "int"), 4: ("protocol", "string")}
CONTAINER: Schema = {1: ("name", "string"), 2: ("image", "string"),
                     3: ("command", ("list", "string")), 4: ("args", ("list", "string")),
                     6: ("ports", ("list", CONTAINER_PORT)),
                     14: ("imagePullPolicy", "string")}
POD_TEMPLATE: Schema = {1: ("metadata", OBJECT_META),
                        2: ("spec", {2: ("containers", ("list", CONTAINER)),
                                     3: ("restartPolicy", "string")})}
DEPLOYMENT: Schema = {
    1: ("metadata", OBJECT_META),
    2: ("spec", {1: ("replicas", "int"), 2: ("selector", {1: ("matchLabels", ("map", "string"))}),
                 3: ("template", POD_TEMPLATE), 7: ("paused", "bool")}),
}

# (group, version, plural or subresource) -> schema of the body kubectl sends.
SCHEMAS: dict[tuple[str, str, str], Schema] = {
    ("authorization.k8s.io", "v1", "selfsubjectaccessreviews"): SSAR,
    ("authorization.k8s.io", "v1", "selfsubjectrulesreviews"): SSRR,
    ("policy", "v1", "eviction"): EVICTION,
    ("autoscaling", "v2", "horizontalpodautoscalers"): HPA_V2,
    ("autoscaling", "v1", "horizontalpodautoscalers"): HPA_V1,
    ("apps", "v1", "deployments"): DEPLOYMENT,
    ("", "v1", "configmaps"): {1: ("metadata", OBJECT_META), 2: ("data", ("map", "string"))},
}


class ProtobufError(ValueError):
    """A body that is not the k8s protobuf envelope or not a message the stand-in knows."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise ProtobufError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, raw value) for every field of one message."""
    out, pos = [], 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        out.append((number, wire, value))
    return out


def _convert(value: Any, typ: FieldType) -> Any:
    if typ == "string":
        return bytes(value).decode("utf-8")
    if typ == "bytes":
        return bytes(value)
    if typ == "int":
        return value - (1 << 64) if value >= 1 << 63 else value
    if typ == "bool":
        return bool(value)
    if isinstance(typ, dict):
        return decode_message(bytes(value), typ)
    raise ProtobufError(f"unknown field type {typ!r}")


def decode_message(buf: bytes, schema: Schema) -> dict[str, Any]:
    """Decode one message into the dict its JSON form would be; unknown fields are skipped."""
    out: dict[str, Any] = {}
    for number, _wire, raw in _fields(buf):
        if number not in schema:
            continue
        name, typ = schema[number]
        if isinstance(typ, tuple) and typ[0] == "map":
            entry = decode_message(bytes(raw), {1: ("key", "string"), 2: ("value", typ[1])})
            out.setdefault(name, {})[entry.get("key", "")] = entry.get("value", "")
        elif isinstance(typ, tuple) and typ[0] == "list":
            out.setdefault(name, []).append(_convert(raw, typ[1]))
        else:
            out[name] = _convert(raw, typ)
    # A Quantity is a string in JSON.
    if schema is QUANTITY:
        return out.get("string", "")  # type: ignore[return-value]
    return out


def decode_envelope(body: bytes, schema: Schema) -> dict[str, Any]:
    """Decode a `k8s\\x00` + runtime.Unknown body into the object's JSON-shaped dict."""
    if not body.startswith(MAGIC):
        raise ProtobufError("body does not start with the k8s protobuf magic")
    unknown = decode_message(body[len(MAGIC):], UNKNOWN)
    obj = decode_message(unknown.get("raw", b""), schema)
    type_meta = unknown.get("typeMeta", {})
    return {"apiVersion": type_meta.get("apiVersion", ""), "kind": type_meta.get("kind", ""),
            **obj}
