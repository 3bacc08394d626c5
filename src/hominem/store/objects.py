"""Content-addressed, write-once artifact directories on any fsspec filesystem.

An artifact is a directory of files plus MANIFEST.json, which lists every file's sha256 and size
and the artifact's provenance (kind, parents, config, code version). The artifact id is the
sha256 of the manifest bytes, so the id names the content and its provenance together.

Writes are atomic: files go to a temporary directory that is renamed into place only when
complete. An id that exists is never written again (identical content by construction), and
writing bytes under a key they do not hash to is refused. Every read re-hashes the files
against the manifest, and the manifest against the id, so corruption is detected, not served.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
import uuid
from pathlib import Path

import fsspec

MANIFEST = "MANIFEST.json"


class ImmutableArtifactError(RuntimeError):
    """An attempt to overwrite or change an existing artifact."""


class CorruptArtifactError(RuntimeError):
    """An artifact's bytes no longer match its content hash."""


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def build_manifest(src_dir: Path, provenance: dict) -> bytes:
    files = {}
    for p in sorted(src_dir.rglob("*")):
        if p.is_file():
            rel = p.relative_to(src_dir).as_posix()
            if rel == MANIFEST:
                raise ValueError(f"{src_dir}: {MANIFEST} is reserved")
            files[rel] = {"sha256": sha256_file(p), "size": p.stat().st_size}
    body = {"files": files, **provenance}
    return json.dumps(body, sort_keys=True, indent=1).encode()


class ObjectStore:
    """Artifact directories under `url` (an fsspec URL), named by content hash."""

    def __init__(self, url: str, cache_dir: str | Path | None = None):
        self.url = url.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        self.local = self.fs.protocol in ("file", "local") or "file" in self.fs.protocol
        # remote artifacts are materialised here for reading (models need a local directory)
        self.cache_dir = Path(cache_dir or tempfile.gettempdir()) / "hominem-artifact-cache"
        self.fs.makedirs(self.root, exist_ok=True)

    def _path(self, artifact_id: str) -> str:
        return f"{self.root}/{artifact_id[:2]}/{artifact_id}"

    def exists(self, artifact_id: str) -> bool:
        return self.fs.exists(f"{self._path(artifact_id)}/{MANIFEST}")

    def put(self, src_dir: str | Path, provenance: dict) -> str:
        """Store the files of src_dir as a new artifact; return its id (idempotent for equal content)."""
        src_dir = Path(src_dir)
        manifest = build_manifest(src_dir, provenance)
        artifact_id = hashlib.sha256(manifest).hexdigest()
        final = self._path(artifact_id)
        if self.exists(artifact_id):
            self.verify(artifact_id)  # equal content already stored; make sure it is still intact
            return artifact_id
        tmp = f"{self.root}/tmp/{uuid.uuid4().hex}"
        self.fs.makedirs(tmp, exist_ok=True)
        for p in sorted(src_dir.rglob("*")):
            if p.is_file():
                dest = f"{tmp}/{p.relative_to(src_dir).as_posix()}"
                self.fs.makedirs(dest.rsplit("/", 1)[0], exist_ok=True)
                self.fs.put_file(str(p), dest)
        with self.fs.open(f"{tmp}/{MANIFEST}", "wb") as f:
            f.write(manifest)
        self.fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
        if self.local:
            _make_read_only(Path(tmp))
            try:
                os.rename(tmp, final)  # atomic on one filesystem
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)
                if not self.exists(artifact_id):
                    raise
        else:
            self.fs.mv(tmp, final, recursive=True)
        return artifact_id

    def put_file(self, artifact_id: str, rel_path: str, data: bytes) -> None:
        """Low-level write into an existing artifact: always refused (artifacts are immutable)."""
        raise ImmutableArtifactError(
            f"artifact {artifact_id[:12]} is immutable; refusing to write {rel_path!r} "
            f"({len(data)} bytes). Store changed content as a new artifact.")

    def manifest(self, artifact_id: str) -> dict:
        with self.fs.open(f"{self._path(artifact_id)}/{MANIFEST}", "rb") as f:
            raw = f.read()
        if hashlib.sha256(raw).hexdigest() != artifact_id:
            raise CorruptArtifactError(f"artifact {artifact_id[:12]}: MANIFEST.json does not hash to its id")
        return json.loads(raw)

    def verify(self, artifact_id: str) -> dict:
        """Re-hash every file; raise CorruptArtifactError naming the first file that differs."""
        man = self.manifest(artifact_id)
        base = self._path(artifact_id)
        present = {p[len(base) + 1:] for p in self.fs.find(base)} - {MANIFEST}
        if present != set(man["files"]):
            extra, missing = present - set(man["files"]), set(man["files"]) - present
            raise CorruptArtifactError(f"artifact {artifact_id[:12]}: files added {sorted(extra)} "
                                       f"or missing {sorted(missing)}")
        for rel, info in man["files"].items():
            h = hashlib.sha256()
            with self.fs.open(f"{base}/{rel}", "rb") as f:
                while block := f.read(1 << 20):
                    h.update(block)
            if h.hexdigest() != info["sha256"]:
                raise CorruptArtifactError(f"artifact {artifact_id[:12]}: file {rel!r} does not match its hash "
                                           f"(expected {info['sha256'][:12]}, found {h.hexdigest()[:12]})")
        return man

    def local_path(self, artifact_id: str, verify: bool = True) -> Path:
        """A local directory holding the artifact's files (verified unless verify=False)."""
        if verify:
            self.verify(artifact_id)
        if self.local:
            return Path(self._path(artifact_id))
        dest = self.cache_dir / artifact_id
        if not dest.exists():
            tmp = self.cache_dir / f"tmp-{uuid.uuid4().hex}"
            self.fs.get(self._path(artifact_id), str(tmp), recursive=True)
            os.replace(tmp, dest)
        return dest


def _make_read_only(root: Path) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            p.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)

