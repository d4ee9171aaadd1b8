"""rag_k8s.redact: exact expected output for secrets, and ordinary output left untouched."""

from __future__ import annotations

import json
import time

import pytest

from rag_k8s.redact import REDACTED, redact

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJlLXBhcnQ"

SECRET_YAML = """\
apiVersion: v1
data:
  password: aGVsbG8=
  username: YWRtaW4=
kind: Secret
metadata:
  name: db
  namespace: dev
type: Opaque
"""
SECRET_YAML_REDACTED = """\
apiVersion: v1
data:
  password: [REDACTED]
  username: [REDACTED]
kind: Secret
metadata:
  name: db
  namespace: dev
type: Opaque
"""

SECRET_LIST_YAML = """\
apiVersion: v1
items:
- apiVersion: v1
  data:
    tls.crt: LS0tLS1CRUdJTg==
    tls.key: |
      LS0tLS1CRUdJTiBQUklWQVRF
      S0VZLS0tLS0K
  kind: Secret
  metadata:
    name: web-tls
- apiVersion: v1
  data:
    app.properties: color=blue
  kind: ConfigMap
  metadata:
    name: web-config
kind: List
"""
SECRET_LIST_YAML_REDACTED = """\
apiVersion: v1
items:
- apiVersion: v1
  data:
    tls.crt: [REDACTED]
    tls.key: [REDACTED]
  kind: Secret
  metadata:
    name: web-tls
- apiVersion: v1
  data:
    app.properties: color=blue
  kind: ConfigMap
  metadata:
    name: web-config
kind: List
"""

STRING_DATA_MULTIDOC = """\
kind: ConfigMap
data:
  mode: fast
---
kind: Secret
stringData:
  api.conf: "user=admin"
"""
STRING_DATA_MULTIDOC_REDACTED = """\
kind: ConfigMap
data:
  mode: fast
---
kind: Secret
stringData:
  api.conf: [REDACTED]
"""

SECRET_JSON = """\
{
    "apiVersion": "v1",
    "data": {
        "password": "aGVsbG8=",
        "username": "YWRtaW4="
    },
    "kind": "Secret",
    "metadata": {
        "labels": {"app": "db"},
        "name": "db"
    },
    "type": "Opaque"
}
"""
SECRET_JSON_REDACTED = """\
{
    "apiVersion": "v1",
    "data": {
        "password": "[REDACTED]",
        "username": "[REDACTED]"
    },
    "kind": "Secret",
    "metadata": {
        "labels": {"app": "db"},
        "name": "db"
    },
    "type": "Opaque"
}
"""

LIST_JSON = (
    '{"items":[{"kind":"ConfigMap","data":{"k":"v"}},'
    '{"data":{"k":"c2VjcmV0"},"kind":"Secret"}],"kind":"List"}'
)
LIST_JSON_REDACTED = (
    '{"items":[{"kind":"ConfigMap","data":{"k":"v"}},'
    '{"data":{"k":"[REDACTED]"},"kind":"Secret"}],"kind":"List"}'
)

KUBECONFIG = """\
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJU
    server: https://10.0.0.1:6443
  name: prod
users:
- name: admin
  user:
    client-certificate-data: LS0tQ0VSVA==
    client-key-data: LS0tS0VZ
    token: abc123def456
"""
KUBECONFIG_REDACTED = """\
clusters:
- cluster:
    certificate-authority-data: [REDACTED]
    server: https://10.0.0.1:6443
  name: prod
users:
- name: admin
  user:
    client-certificate-data: [REDACTED]
    client-key-data: [REDACTED]
    token: [REDACTED]
"""

CONFIGMAP_YAML = """\
apiVersion: v1
data:
  LOG_LEVEL: debug
  app.properties: |
    color=blue
    retries=3
kind: ConfigMap
metadata:
  name: web-config
"""

POD_SPEC_YAML = """\
spec:
  automountServiceAccountToken: false
  volumes:
  - name: creds
    secret:
      secretName: db
  serviceAccountName: api
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (SECRET_YAML, SECRET_YAML_REDACTED),
        (SECRET_LIST_YAML, SECRET_LIST_YAML_REDACTED),
        (STRING_DATA_MULTIDOC, STRING_DATA_MULTIDOC_REDACTED),
        (SECRET_JSON, SECRET_JSON_REDACTED),
        (LIST_JSON, LIST_JSON_REDACTED),
        ("kind: Secret\ndata: {password: aGk=}\n", "kind: Secret\ndata: [REDACTED]\n"),
        (KUBECONFIG, KUBECONFIG_REDACTED),
    ],
    ids=["secret-yaml", "secret-in-list-yaml-with-block-scalar", "stringdata-second-document",
         "secret-json", "secret-in-list-json", "secret-flow-mapping", "kubeconfig-credentials"],
)
def test_secret_manifests_and_kubeconfig_values_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer [REDACTED]"),
        ("authorization=bearer 12345678", "authorization=bearer [REDACTED]"),
        ("curl -H 'Authorization: Bearer s3cr3tT0ken'",
         "curl -H 'Authorization: Bearer [REDACTED]'"),
        (f"sent bearer {JWT} upstream", "sent bearer [REDACTED] upstream"),
        (f"id={JWT} ok", "id=[REDACTED] ok"),
        (f"token:      {JWT}", "token:      [REDACTED]"),
        ('{"token": "abc123", "user": "bob"}', '{"token": "[REDACTED]", "user": "bob"}'),
        ('{"client_secret":"x9","id":1}', '{"client_secret":"[REDACTED]","id":1}'),
        ("password: hunter2 # old", "password: [REDACTED]"),
        ("    DB_PASSWORD:  hunter2", "    DB_PASSWORD:  [REDACTED]"),
        ("GET /cb?access_token=abc&state=1 200", "GET /cb?access_token=[REDACTED]&state=1 200"),
        ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG", "AWS_SECRET_ACCESS_KEY=[REDACTED]"),
        ("key id AKIAIOSFODNN7EXAMPLE in use", "key id [REDACTED] in use"),
        ("refreshToken: r-123", "refreshToken: [REDACTED]"),
        ("users:\n- token: abc\n  name: x\n", "users:\n- token: [REDACTED]\n  name: x\n"),
        ("kubectl --token=abc get pods", "kubectl --token=[REDACTED] get pods"),
        ("password: |\n  line1\n  line2\nuser: bob\n", "password: [REDACTED]\nuser: bob\n"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\nnext",
            "-----BEGIN RSA PRIVATE KEY-----[REDACTED]\nnext",
        ),
    ],
    ids=["auth-header", "auth-equals", "auth-header-in-curl", "bearer-jwt", "bare-jwt",
         "describe-sa-token", "json-token", "json-client-secret", "yaml-password",
         "describe-env-password", "url-access-token", "aws-secret-env", "aws-key-id",
         "camelcase-refresh-token", "list-item-token",
         "token-flag", "block-scalar-password", "pem-private-key"],
)
def test_secret_looking_values_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        CONFIGMAP_YAML,
        POD_SPEC_YAML,
        "NAME                  READY   STATUS    RESTARTS   AGE\n"
        "api-7d9f8b6c5-x2x9z   1/1     Running   0          3d\n",
        "2024-05-01T10:00:00Z GET /healthz 200 1.2ms\n",
        "error: bearer token required for this endpoint\n",
        "token bucket refilled: 10 tokens\n",
        'Error from server (NotFound): secrets "db-password" not found\n',
        "Type:  kubernetes.io/service-account-token\n",
        '{"kind":"ConfigMap","data":{"mode":"fast","url":"https://x"}}',
        "",
    ],
    ids=["configmap-data", "pod-spec-secret-volume", "get-pods-table", "access-log",
         "prose-about-bearer-tokens", "prose-about-tokens", "secret-not-found-error",
         "secret-type-line", "configmap-json", "empty"],
)
def test_ordinary_output_is_left_untouched(text: str) -> None:
    assert redact(text) == text


def test_redaction_is_idempotent() -> None:
    once = redact(SECRET_YAML + KUBECONFIG + f"Authorization: Bearer {JWT}\n")
    assert redact(once) == once
    assert REDACTED in once


@pytest.mark.parametrize(
    "text",
    [
        "a-" * 32_000,
        "a_" * 32_000 + ":",
        "token: a" + " " * 60_000 + "b",
        "x=y " * 16_000,
        '"' * 60_000,
        "{" * 60_000 + '"kind":"Secret"',
        "data:\n" * 10_000 + "kind: Secret\n",
        "eyJ" * 20_000,
        "bearer " * 9_000,
    ],
    ids=["dashed-word", "underscored-word", "spaces-in-value", "many-assignments", "quotes",
         "deep-json", "many-data-keys", "jwt-prefixes", "bearer-words"],
)
def test_hostile_64k_output_is_redacted_in_linear_time(text: str) -> None:
    # kubectl output is untrusted (pod logs): a quadratic pattern would stall every call.
    started = time.perf_counter()
    redact(text)
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize(
    "text",
    [
        # kind after data, at the end of its object: the case a line-by-line pass got wrong
        '{\n "data": {\n  "config": "YWRtaW4="\n },\n "kind": "Secret"\n}\n',
        '{\n    "apiVersion": "v1",\n    "data": {\n        "password": "aHVudGVyMg==",\n'
        '        "user": "YWRtaW4="\n    },\n    "kind": "Secret"\n}\n',
    ],
)
def test_multiline_json_secret_with_kind_last_is_redacted_and_stays_json(text: str) -> None:
    out = redact(text)
    doc = json.loads(out)
    assert set(doc["data"].values()) == {"[REDACTED]"}
    assert "YWRtaW4=" not in out and "aHVudGVyMg==" not in out


def test_multiline_yaml_flow_mapping_in_a_secret_is_redacted() -> None:
    text = "kind: Secret\ndata: {\n  password: aHVudGVyMg==\n}\n"
    assert "aHVudGVyMg==" not in redact(text)


def test_yaml_secret_with_a_json_style_data_block_is_still_redacted() -> None:
    text = 'kind: Secret\ndata: {\n  "foo": "YmFy"\n}\n'
    assert "YmFy" not in redact(text)


# --- every form the security review planted (issue 11), one row each -------------------------

PLANTED: list[tuple[str, str, str]] = [
    # (id, text, the exact redacted text)
    ("secret-kind-with-comment",
     "apiVersion: v1\ndata:\n  password: aGVsbG8=\nkind: Secret # the db credentials\n",
     "apiVersion: v1\ndata:\n  password: [REDACTED]\nkind: Secret # the db credentials\n"),
    ("secret-kind-quoted-with-comment",
     "kind: 'Secret'   # x\ndata:   # values\n  tls.key: a2V5\n",
     "kind: 'Secret'   # x\ndata:   # values\n  tls.key: [REDACTED]\n"),
    ("env-line-password", "DB_PASSWORD=hunter2\n", "DB_PASSWORD=[REDACTED]\n"),
    ("env-line-glued-password", "PGPASSWORD=pg-secret-1", "PGPASSWORD=[REDACTED]"),
    ("env-line-secret-key", "SECRET_KEY=django-insecure-x1", "SECRET_KEY=[REDACTED]"),
    ("env-line-bare-secret", "SECRET=abc", "SECRET=[REDACTED]"),
    ("env-line-api-token", "export API_TOKEN=t0k3n", "export API_TOKEN=[REDACTED]"),
    ("env-line-pass", "MYSQL_PASS=m1 MYSQL_PWD=m2", "MYSQL_PASS=[REDACTED] MYSQL_PWD=[REDACTED]"),
    ("env-list", "# deployments/api, container api\nDB_USER=app\nDB_PASSWORD=hunter2\n",
     "# deployments/api, container api\nDB_USER=app\nDB_PASSWORD=[REDACTED]\n"),
    ("env-entry-yaml", "env:\n- name: DB_PASSWORD\n  value: hunter2\n- name: LOG\n  value: x\n",
     "env:\n- name: DB_PASSWORD\n  value: [REDACTED]\n- name: LOG\n  value: x\n"),
    ("env-entry-yaml-value-first", "- value: hunter2\n  name: API_TOKEN\n",
     "- value: [REDACTED]\n  name: API_TOKEN\n"),
    ("env-entry-json", '[{"name":"DB_PASSWORD","value":"hunter2"},{"name":"A","value":"b"}]',
     '[{"name":"DB_PASSWORD","value":"[REDACTED]"},{"name":"A","value":"b"}]'),
    ("env-entry-json-spaced", '{"name": "REDIS_TOKEN", "value": "r3d"}',
     '{"name": "REDIS_TOKEN", "value": "[REDACTED]"}'),
    ("url-userinfo", "dial postgres://admin:s3cr3t@db.prod:5432/app failed",
     "dial postgres://admin:[REDACTED]@db.prod:5432/app failed"),
    ("url-password-only", "redis://:onlypass@cache:6379/0", "redis://:[REDACTED]@cache:6379/0"),
    ("url-in-env", "DATABASE_URL=mysql://u:p4ss@h/db", "DATABASE_URL=mysql://u:[REDACTED]@h/db"),
    ("quoted-double", 'password="hunter 2" user="bob"', 'password="[REDACTED]" user="bob"'),
    ("quoted-single", "passwd='hunter 2'", "passwd='[REDACTED]'"),
    ("flag-password", "kubectl login --password hunter2 --username bob",
     "kubectl login --password [REDACTED] --username bob"),
    ("flag-token", "kubectl get pods --token abc.def -n dev", "kubectl get pods --token [REDACTED] -n dev"),
    ("flag-equals-token", "--token=abc", "--token=[REDACTED]"),
    ("from-literal", "kubectl create secret generic db --from-literal=password=hunter2",
     "kubectl create secret generic db --from-literal=password=[REDACTED]"),
    ("curl-user", "curl -u admin:hunter2 https://x", "curl -u admin:[REDACTED] https://x"),
    ("json-secret", '{"secret": "abc", "name": "x"}', '{"secret": "[REDACTED]", "name": "x"}'),
    ("json-number-password", '{"password": 123456, "port": 5432}',
     '{"password": "[REDACTED]", "port": 5432}'),
    ("json-escaped-key", '{"\\u0070assword": "hunter2"}', '{"\\u0070assword": "[REDACTED]"}'),
    ("json-escaped-key-token", '{"\\u0074oken":"abc"}', '{"\\u0074oken":"[REDACTED]"}'),
    ("yaml-escaped-key", '"\\u0070assword": hunter2', '"\\u0070assword": [REDACTED]'),
    ("authorization-basic", "Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic [REDACTED]"),
    ("authorization-basic-json", '{"Authorization": "Basic dXNlcjpwYXNz"}',
     '{"Authorization": "Basic [REDACTED]"}'),
    ("proxy-authorization", "Proxy-Authorization: Digest abc123", "Proxy-Authorization: Digest [REDACTED]"),
    ("basic-alone", "sent basic dXNlcjpwYXNz upstream", "sent basic [REDACTED] upstream"),
    ("bearer-jwt", f"Authorization: Bearer {JWT}", "Authorization: Bearer [REDACTED]"),
    ("jwt-alone", f"token is {JWT}.", "token is [REDACTED]."),
    ("aws-key-id", "AKIAIOSFODNN7EXAMPLE", "[REDACTED]"),
    ("aws-secret-spaced-equals", "aws_secret_access_key = wJalrXUtnFEMI",
     "aws_secret_access_key = [REDACTED]"),
    ("pem-private", "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----",
     "-----BEGIN PRIVATE KEY-----[REDACTED]"),
    ("pem-certificate", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\nok",
     "-----BEGIN CERTIFICATE-----[REDACTED]\nok"),
    ("pem-cut-off", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1r",
     "-----BEGIN OPENSSH PRIVATE KEY-----[REDACTED]"),
    ("pem-base64", "ca: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQ==", "ca: [REDACTED]"),
    ("token-colon", "token: abc123", "token: [REDACTED]"),
    ("password-equals", "password=hunter2", "password=[REDACTED]"),
    ("github-token", "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "[REDACTED]"),
    ("slack-token", "xoxb-12345678901-abcdef", "[REDACTED]"),
    ("private-key-json", '{"private_key": "MIIEv"}', '{"private_key": "[REDACTED]"}'),
    ("camel-case-password", "adminPassword: letmein", "adminPassword: [REDACTED]"),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in PLANTED if t != e],
                         ids=[i for i, t, e in PLANTED if t != e])
def test_every_planted_form_is_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(expected) == expected  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "PWD=/home/app\n",
        "spec:\n  automountServiceAccountToken: false\n  secretName: db\n",
        '{"automountServiceAccountToken": true, "tokenExpirationSeconds": 3600}',
        "env:\n- name: LOG_LEVEL\n  value: debug\n",
        "kind: ConfigMap # not a secret\ndata:\n  mode: fast\n",
        "see https://example.com:8443/path and http://host/x?y=1\n",
        "--token-file /var/run/token is set\n",
        "export PATH=/usr/bin\n",
    ],
    ids=["pwd-is-a-folder", "pod-spec-booleans", "json-booleans", "env-non-secret",
         "configmap-with-comment", "urls-without-userinfo", "token-file-flag", "path-env"],
)
def test_look_alikes_that_hold_no_secret_are_kept(text: str) -> None:
    assert redact(text) == text


def test_redact_data_hides_credential_keys_and_redacts_every_string() -> None:
    from rag_k8s.redact import redact_data

    value = {"query": "use password=hunter2", "params": {"api_key": "k-1", "replicas": 3,
                                                         "token": None},
             "list": ["Bearer abcdefgh12345", 7]}
    assert redact_data(value) == {
        "query": "use password=[REDACTED]",
        "params": {"api_key": "[REDACTED]", "replicas": 3, "token": None},
        "list": ["Bearer [REDACTED]", 7],
    }
