"""The FAISS index: build, save, load, incremental rebuild and staleness, on a small card corpus."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import yaml

from rag_k8s import index
from rag_k8s.config import Settings
from rag_k8s.errors import IndexError_
from rag_k8s.retrieve import retrieve

ASSET_CARDS = Path(__file__).resolve().parent / "assets" / "index_cards"
ASSET_IDS = ["can-i-any", "drain-node", "get-pod", "logs-pod", "restart-deployment",
             "scale-deployment"]


@pytest.fixture
def cards_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "cards"
    shutil.copytree(ASSET_CARDS, dest)
    return dest


@pytest.fixture
def settings(tmp_path: Path, cards_copy: Path) -> Settings:
    """A private home and a private copy of the asset cards: tests may edit both freely."""
    return Settings.resolve(home=tmp_path / "home", cards_dir=cards_copy)


def edit_card(cards_dir: Path, card_id: str, **changes: object) -> None:
    path = cards_dir / f"{card_id}.yaml"
    data = yaml.safe_load(path.read_text())
    data.update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def total_rows(cards_dir: Path) -> int:
    from rag_k8s.cards import load_corpus

    return sum(len(index.card_texts(c)) for c in load_corpus(cards_dir))


def test_build_writes_index_vectors_and_manifest(settings: Settings) -> None:
    report = index.build_index(settings, progress=False)

    assert (report.cards, report.embedded, report.reused) == (6, 6, 0)
    assert report.path == settings.index_dir
    manifest = json.loads((settings.index_dir / "manifest.json").read_text())
    assert manifest["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert manifest["dimension"] == 384
    assert manifest["card_ids"] == ASSET_IDS
    assert sorted(manifest["hashes"]) == ASSET_IDS
    assert manifest["rag_k8s_version"] == "0.1.0"
    assert manifest["built_at"].endswith("+00:00")
    names = sorted(p.name for p in settings.index_dir.iterdir())
    # no temp files left; the ONNX export of the model lives in embedder/
    assert names == sorted(["embedder", "manifest.json", *manifest["files"].values()])
    assert manifest["runtime"] == "onnxruntime"


def test_load_index_matches_manifest_and_is_cached(settings: Settings) -> None:
    index.build_index(settings, progress=False)

    loaded = index.load_index(settings)

    assert loaded.card_ids == tuple(ASSET_IDS)
    assert loaded.rows == total_rows(settings.cards_dir) == loaded.vectors.shape[0]
    assert loaded.faiss.d == 384
    assert [int(loaded.row_card[r]) for r in loaded.first_row] == list(range(6))
    assert index.load_index(settings) is loaded


def test_rebuild_of_unchanged_cards_embeds_nothing(settings: Settings) -> None:
    index.build_index(settings, progress=False)

    report = index.build_index(settings, progress=False)

    assert (report.cards, report.embedded, report.reused) == (6, 0, 6)


def test_force_rebuild_embeds_every_card(settings: Settings) -> None:
    index.build_index(settings, progress=False)

    report = index.build_index(settings, progress=False, force=True)

    assert (report.embedded, report.reused) == (6, 0)


def test_rebuild_embeds_only_the_changed_card(settings: Settings) -> None:
    index.build_index(settings, progress=False)
    before = index.load_index(settings)
    edit_card(settings.cards_dir, "logs-pod", keywords=["stdout", "print output"])

    report = index.build_index(settings, progress=False)

    assert (report.cards, report.embedded, report.reused) == (6, 1, 5)
    after = index.load_index(settings)
    assert after is not before
    assert after.hashes["logs-pod"] != before.hashes["logs-pod"]
    assert {k: v for k, v in after.hashes.items() if k != "logs-pod"} == \
        {k: v for k, v in before.hashes.items() if k != "logs-pod"}


def test_ensure_index_rebuilds_after_a_card_changes_and_finds_the_new_text(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    index.build_index(settings, progress=False)
    edit_card(settings.cards_dir, "scale-deployment",
              keywords=["zebra stampede migration"])

    with caplog.at_level(logging.WARNING, logger="rag_k8s.index"):
        hits = retrieve("zebra stampede migration", settings=settings)

    assert hits[0].card_id == "scale-deployment"
    assert [r.getMessage() for r in caplog.records] == [
        f"index in {settings.index_dir} is stale (cards changed scale-deployment); rebuilding"
    ]
    assert index.index_status(settings)["fresh"] is True


def test_ensure_index_follows_a_removed_and_an_added_card(settings: Settings) -> None:
    index.build_index(settings, progress=False)
    (settings.cards_dir / "drain-node.yaml").unlink()
    restart = yaml.safe_load((settings.cards_dir / "restart-deployment.yaml").read_text())
    restart.update(id="restart-statefulset", resource="statefulset",
                   command_template="kubectl rollout restart statefulset/{{name}} -n {{namespace}}",
                   examples=[{"query": "restart the db statefulset in prod",
                              "slots": {"name": "db", "namespace": "prod"},
                              "command": "kubectl rollout restart statefulset/db -n prod"}])
    (settings.cards_dir / "restart-statefulset.yaml").write_text(yaml.safe_dump(restart))

    loaded, corpus = index.ensure_index(settings)

    assert loaded.card_ids == ("can-i-any", "get-pod", "logs-pod", "restart-deployment",
                               "restart-statefulset", "scale-deployment")
    assert [c.id for c in corpus] == list(loaded.card_ids)
    assert retrieve("restart the db statefulset", settings=settings)[0].card_id == \
        "restart-statefulset"


@pytest.mark.parametrize(
    ("manifest_change", "reason"),
    [
        ({"model": "sentence-transformers/other-model"},
         "built with sentence-transformers/other-model (384 dims), not "
         "sentence-transformers/all-MiniLM-L6-v2"),
        ({"dimension": 768},
         "built with sentence-transformers/all-MiniLM-L6-v2 (768 dims), not "
         "sentence-transformers/all-MiniLM-L6-v2"),
        ({"texts_version": 1}, "built by another version of rag-k8s's card texts"),
    ],
)
def test_an_index_built_another_way_is_stale_and_fully_rebuilt(
    settings: Settings, manifest_change: dict[str, object], reason: str
) -> None:
    index.build_index(settings, progress=False)
    path = settings.index_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(manifest_change)
    path.write_text(json.dumps(manifest))
    from rag_k8s.cards import cached_corpus

    assert index.stale_reason(index.load_index(settings), cached_corpus(settings.cards_dir)) == reason
    assert index.build_index(settings, progress=False).embedded == 6  # nothing reusable


def test_index_status_reports_missing_fresh_and_stale(settings: Settings) -> None:
    missing = index.index_status(settings)
    assert (missing["exists"], missing["fresh"], missing["cards"]) == (False, False, 0)
    assert missing["problem"] == f"no index in {settings.index_dir}; run `rag-k8s build-index`"

    index.build_index(settings, progress=False)
    fresh = index.index_status(settings)
    assert (fresh["exists"], fresh["fresh"], fresh["cards"], fresh["problem"]) == \
        (True, True, 6, None)
    assert fresh["built_at"]

    (settings.cards_dir / "get-pod.yaml").unlink()
    stale = index.index_status(settings)
    assert (stale["exists"], stale["fresh"]) == (True, False)
    assert stale["problem"] == "stale: cards removed get-pod; run `rag-k8s build-index`"


@pytest.mark.parametrize(
    "damage",
    ["not json {", json.dumps({"format": 99}), json.dumps([1, 2])],
    ids=["not-json", "wrong-format", "not-a-mapping"],
)
def test_a_damaged_manifest_is_an_index_error_and_ensure_index_rebuilds(
    settings: Settings, damage: str
) -> None:
    index.build_index(settings, progress=False)
    (settings.index_dir / "manifest.json").write_text(damage)

    with pytest.raises(IndexError_, match=r"run `rag-k8s build-index --force`"):
        index.load_index(settings)
    loaded, _ = index.ensure_index(settings)

    assert loaded.card_ids == tuple(ASSET_IDS)


def test_a_missing_data_file_is_an_index_error(settings: Settings) -> None:
    index.build_index(settings, progress=False)
    manifest = json.loads((settings.index_dir / "manifest.json").read_text())
    (settings.index_dir / manifest["files"]["index"]).unlink()
    index._LOADED.clear()

    with pytest.raises(IndexError_, match=r"cannot read the index .*build-index --force"):
        index.load_index(settings)


def test_card_texts_are_the_whole_card_then_examples_then_keywords(cards_copy: Path) -> None:
    from rag_k8s.cards import load_card

    card = load_card(cards_copy / "restart-deployment.yaml")
    edit_card(cards_copy, "restart-deployment", keywords=["bounce", "kick"])
    card = load_card(cards_copy / "restart-deployment.yaml")

    assert index.card_texts(card) == [
        card.embedding_text(), "restart the api deployment in prod",
        "bounce deployment", "kick deployment",
    ]


def test_progress_bar_goes_to_stderr(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    index.build_index(settings, progress=True)

    out, err = capsys.readouterr()
    assert out == ""
    assert "embedding 6 cards" in err


# ------------------------------------------------------------------------ query_state (warm path)


def _needs_inotify() -> None:
    from rag_k8s import dirwatch

    if dirwatch.inotify_simple is None:
        pytest.skip("no inotify on this system: the manifests are compared instead")


def test_a_warm_query_state_is_answered_by_the_watch_without_reading_the_manifests(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _needs_inotify()
    assert index.query_state(settings).token is None  # it built the index: events came
    first = index.query_state(settings)
    assert first.watched == (settings.cards_dir.resolve(), settings.index_dir.resolve(),
                             settings.index_dir.resolve() / "embedder")
    assert first.token is not None

    def no_read(*_: object) -> None:
        raise AssertionError("a warm call read a manifest")

    monkeypatch.setattr(index, "_manifest_mtime", no_read)
    monkeypatch.setattr(index, "export_stamp", no_read)
    monkeypatch.setattr(index, "cached_corpus", no_read)

    assert index.query_state(settings) is first


@pytest.mark.parametrize("watch", [True, False], ids=["watched", "stamps"])
def test_query_state_sees_a_rebuilt_index_an_edited_card_and_a_replaced_export(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, watch: bool
) -> None:
    from rag_k8s.cards import WATCH

    if not watch:
        monkeypatch.setattr(WATCH, "disabled", True)
    index.build_index(settings, progress=False)
    first = index.query_state(settings)
    assert (first.token is not None) is (watch and WATCH.disabled is False)

    index.build_index(settings, progress=False, force=True)  # a new manifest, renamed over
    rebuilt = index.query_state(settings)
    assert rebuilt.loaded is not first.loaded
    assert rebuilt.embedder is first.embedder

    edit_card(settings.cards_dir, "scale-deployment", keywords=["zebra stampede migration"])
    edited = index.query_state(settings)
    assert edited.corpus is not first.corpus
    assert edited.loaded.hashes["scale-deployment"] != first.loaded.hashes["scale-deployment"]

    export = settings.index_dir / "embedder" / "export.json"
    copy = export.with_name("export.json.new")
    shutil.copy2(export, copy)
    copy.replace(export)  # the same export, a new file: the embedder is loaded again
    reloaded = index.query_state(settings)
    assert reloaded.embedder is not first.embedder
    assert reloaded.loaded is edited.loaded
    assert index.query_state(settings) is reloaded


def test_a_card_change_another_caller_already_reloaded_still_renews_the_query_state(
    settings: Settings
) -> None:
    """The pipeline loads the corpus (watching the folder again) before it retrieves: the
    retrieval must not take that fresh watch as proof that its own state is current."""
    _needs_inotify()
    from rag_k8s.cards import cached_corpus

    index.query_state(settings)  # builds the index
    first = index.query_state(settings)
    assert first.token is not None and "drain-node" in first.loaded.card_ids
    (settings.cards_dir / "drain-node.yaml").unlink()
    assert "drain-node" not in [c.id for c in cached_corpus(settings.cards_dir)]

    state = index.query_state(settings)
    assert state is not first
    assert "drain-node" not in state.loaded.card_ids
    assert "drain-node" not in [h.card_id for h in retrieve("drain node-3", settings=settings)]


def test_a_query_state_that_failed_fails_again_instead_of_answering_from_before(
    settings: Settings
) -> None:
    index.query_state(settings)  # builds the index
    index.query_state(settings)  # watched from here on, where inotify is
    manifest = settings.index_dir / "embedder" / "export.json"
    data = json.loads(manifest.read_text())
    data["onnxruntime"] = "0.0.1"  # an export made by another onnxruntime: re-optimised
    bad = manifest.with_name("export.json.bad")
    bad.write_text(json.dumps(data))
    bad.replace(manifest)
    (settings.index_dir / "embedder" / "model.opt.onnx").write_bytes(b"not a graph")

    for _ in range(2):
        with pytest.raises(IndexError_):
            index.query_state(settings)


def test_an_index_path_pointed_at_another_index_is_followed(tmp_path: Path, cards_copy: Path) -> None:
    """The index path is a symlink re-pointed at another built index: no event reaches the
    folder first watched, so the warm check also compares what the path names."""
    _needs_inotify()
    built = [Settings.resolve(home=tmp_path / f"home-{n}", cards_dir=cards_copy) for n in "ab"]
    for other in built:
        index.build_index(other, progress=False)
    home = tmp_path / "home"
    home.mkdir()
    (home / "index").symlink_to(built[0].index_dir)
    settings = Settings.resolve(home=home, cards_dir=cards_copy)

    first = index.query_state(settings)
    assert first.watched[1] == built[0].index_dir.resolve()
    assert index.query_state(settings) is first
    (home / "index").unlink()
    (home / "index").symlink_to(built[1].index_dir)

    again = index.query_state(settings)
    assert again.watched[1] == built[1].index_dir.resolve()
    assert again.loaded is not first.loaded
    assert again.loaded.manifest["built_at"] == index.load_index(built[1]).manifest["built_at"]
