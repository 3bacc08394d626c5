"""Immutable, content-addressed artifacts plus a SQL metadata registry with lineage edges."""

from hominem.store.store import ArtifactStore, open_store

__all__ = ["ArtifactStore", "open_store"]
