"""ArtifactStore: the object store and the registry behind one interface.

HOMINEM_HOME (or store.home in config) moves both: objects under <home>/objects and the
registry at sqlite:///<home>/registry.db unless their URLs are set explicitly.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from hominem.config import StoreConfig
from hominem.store.objects import ObjectStore
from hominem.store.registry import Record, Registry, now_iso
from hominem.types import ArtifactRef


def home_dir(cfg: StoreConfig | None = None) -> Path:
    if cfg is not None and cfg.home:
        return Path(cfg.home).expanduser().resolve()
    return Path(os.environ.get("HOMINEM_HOME") or Path.cwd() / ".hominem").expanduser().resolve()


class ArtifactStore:
    def __init__(self, home: Path, objects_url: str | None = None, registry_url: str | None = None):
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.objects = ObjectStore(objects_url or f"file://{home / 'objects'}", cache_dir=home / "cache")
        self.registry = Registry(registry_url or f"sqlite:///{home / 'registry.db'}")
        self.work_dir = home / "work"  # per-stage scratch space that survives a killed run (resume)
        self.work_dir.mkdir(exist_ok=True)

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A fresh temporary directory for a stage to write an artifact's files into."""
        d = Path(tempfile.mkdtemp(prefix="stage-", dir=self.home))
        try:
            yield d
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def commit(self, src_dir: Path, *, kind: str, name: str, stage_key: str, config: dict, config_hash: str,
               code_version: str, parents: dict[str, str], metrics: dict, tags: list[str] = (),
               run_info: dict | None = None) -> ArtifactRef:
        """Store src_dir as an immutable artifact and record it in the registry.

        `config` and `metrics` are part of the artifact's content (and so of its id); `run_info`
        (the full resolved config of the run, timings, cache hits) is recorded in the registry only,
        so a resumed run produces the same artifact ids as an uninterrupted one.
        """
        provenance = {"kind": kind, "name": name, "stage_key": stage_key, "config": config,
                      "config_hash": config_hash, "code_version": code_version, "parents": parents}
        (src_dir / "metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=True, default=float))
        artifact_id = self.objects.put(src_dir, provenance)
        self.registry.add(Record(id=artifact_id, kind=kind, name=name, created_at=now_iso(), stage_key=stage_key,
                                 config_hash=config_hash, code_version=code_version,
                                 config={**config, **({"_run": run_info} if run_info else {})},
                                 metrics=metrics, tags=list(tags), parents=parents))
        return self.ref(artifact_id)

    def ref(self, artifact_id: str, verify: bool = False) -> ArtifactRef:
        rec = self.registry.get(artifact_id)
        return ArtifactRef(id=artifact_id, kind=rec.kind, path=str(self.objects.local_path(artifact_id, verify)))

    def open(self, ref: str) -> ArtifactRef:
        """Resolve an id prefix or tag and return a verified, readable reference."""
        artifact_id = self.registry.resolve(ref)
        return self.ref(artifact_id, verify=True)

    def find(self, stage_key: str) -> ArtifactRef | None:
        rec = self.registry.find_by_stage_key(stage_key)
        if rec is None or not self.objects.exists(rec.id):
            return None
        return self.ref(rec.id)


def open_store(cfg: StoreConfig | None = None) -> ArtifactStore:
    home = home_dir(cfg)
    return ArtifactStore(home, cfg.objects_url if cfg else None, cfg.registry_url if cfg else None)
