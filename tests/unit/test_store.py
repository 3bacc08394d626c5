import os
import stat

import pytest

from hominem.store import open_store
from hominem.store.lineage import ancestry, render
from hominem.store.objects import CorruptArtifactError, ImmutableArtifactError


def _commit(store, tmp_path, name, content, parents=None, metrics=None, kind="dataset"):
    src = tmp_path / f"src-{name}"
    src.mkdir()
    (src / "data.txt").write_text(content)
    return store.commit(src, kind=kind, name=name, stage_key=f"key-{name}", config={"x": content},
                        config_hash="h", code_version="test", parents=parents or {}, metrics=metrics or {})


def test_homindem_home_moves_objects_and_registry(tmp_path):
    store = open_store()
    assert store.home == (tmp_path / "home").resolve()
    ref = _commit(store, tmp_path, "a", "hello")
    assert str(tmp_path / "home") in ref.path
    assert (tmp_path / "home" / "registry.db").exists()


def test_content_address_is_idempotent_and_refuses_overwrite(tmp_path):
    store = open_store()
    ref = _commit(store, tmp_path, "a", "hello")
    again = _commit(store, tmp_path, "a2", "hello")  # same name? no: name is provenance -> new id
    assert again.id != ref.id
    src = tmp_path / "same"
    src.mkdir()
    (src / "data.txt").write_text("hello")
    same = store.commit(src, kind="dataset", name="a", stage_key="key-a", config={"x": "hello"}, config_hash="h",
                        code_version="test", parents={}, metrics={})
    assert same.id == ref.id  # equal content and provenance: the same artifact, nothing rewritten
    with pytest.raises(ImmutableArtifactError):
        store.objects.put_file(ref.id, "data.txt", b"changed")
    data_file = os.path.join(ref.path, "data.txt")
    assert not os.stat(data_file).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert open(data_file).read() == "hello"


def test_corruption_is_detected_on_read(tmp_path):
    store = open_store()
    ref = _commit(store, tmp_path, "a", "hello")
    store.open(ref.id)  # intact: verifies fine
    path = os.path.join(ref.path, "data.txt")
    os.chmod(path, 0o644)
    with open(path, "w") as f:
        f.write("tampered")
    with pytest.raises(CorruptArtifactError, match="data.txt"):
        store.open(ref.id)


def test_extra_file_is_detected(tmp_path):
    store = open_store()
    ref = _commit(store, tmp_path, "a", "hello")
    open(os.path.join(ref.path, "sneaky.bin"), "w").write("x")
    with pytest.raises(CorruptArtifactError, match="sneaky.bin"):
        store.open(ref.id)


def test_registry_search_tags_metrics_dates_and_lineage(tmp_path):
    store = open_store()
    a = _commit(store, tmp_path, "a", "prompts", kind="prompts", metrics={"n": 10})
    b = _commit(store, tmp_path, "b", "rm", kind="reward", parents={"dataset": a.id}, metrics={"acc": 0.8})
    c = _commit(store, tmp_path, "c", "adapter", kind="policy", parents={"pairs": b.id}, metrics={"acc": 0.6})
    reg = store.registry
    assert [r.id for r in reg.search(kind="reward")] == [b.id]
    assert {r.id for r in reg.search(metric="acc>0.7")} == {b.id}
    assert {r.id for r in reg.search(metric="acc<=0.6")} == {c.id}
    reg.tag(c.id, "best")
    assert reg.resolve("best") == c.id and reg.resolve(c.id[:10]) == c.id
    assert [r.id for r in reg.search(tag="best")] == [c.id]
    assert len(reg.search(since="2000-01-01")) == 3 and reg.search(until="2000-01-01") == []
    tree = ancestry(reg, c.id)
    assert tree["parents"]["pairs"]["parents"]["dataset"]["id"] == a.id
    text = "\n".join(render(tree))
    assert "prompts" in text and a.id[:12] in text
    with pytest.raises(KeyError):
        reg.resolve("nope")
