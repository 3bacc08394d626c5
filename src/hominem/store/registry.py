"""The metadata registry: one SQL database (SQLite by default, any SQLAlchemy URL) that records
every artifact's kind, name, creation time, stage key, config hash, code version, metrics, tags
and lineage edges.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field

import sqlalchemy as sa

metadata = sa.MetaData()

artifacts = sa.Table(
    "artifacts", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False, index=True),  # ISO-8601 UTC
    sa.Column("stage_key", sa.String(64), nullable=False, index=True),  # hash(inputs, config, code)
    sa.Column("config_hash", sa.String(64), nullable=False),
    sa.Column("code_version", sa.String(64), nullable=False),
    sa.Column("config", sa.Text, nullable=False),  # resolved config section, JSON
    sa.Column("metrics", sa.Text, nullable=False),  # JSON object of numbers/strings
)
tags = sa.Table(
    "tags", metadata,
    sa.Column("artifact_id", sa.String(64), sa.ForeignKey("artifacts.id"), primary_key=True),
    sa.Column("tag", sa.String(128), primary_key=True),
)
edges = sa.Table(
    "edges", metadata,
    sa.Column("child", sa.String(64), sa.ForeignKey("artifacts.id"), primary_key=True),
    sa.Column("parent", sa.String(64), sa.ForeignKey("artifacts.id"), primary_key=True),
    sa.Column("role", sa.String(64), nullable=False),  # what the parent was to the child ("dataset", ...)
)


@dataclass
class Record:
    id: str
    kind: str
    name: str
    created_at: str
    stage_key: str
    config_hash: str
    code_version: str
    config: dict
    metrics: dict
    tags: list[str] = field(default_factory=list)
    parents: dict[str, str] = field(default_factory=dict)  # role -> parent id

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class Registry:
    def __init__(self, url: str):
        self.url = url
        self.engine = sa.create_engine(url, future=True)
        # Several processes (the ranks of one `accelerate launch`) may open a new store at once:
        # creating the tables then races, so retry what another process got to first.
        for attempt in range(10):
            try:
                if url.startswith("sqlite"):
                    with self.engine.begin() as c:  # concurrent readers while a run writes
                        c.exec_driver_sql("PRAGMA journal_mode=WAL")
                metadata.create_all(self.engine)
                break
            except sa.exc.OperationalError as e:
                if not ("already exists" in str(e) or "database is locked" in str(e)) or attempt == 9:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def add(self, rec: Record) -> None:
        """Insert an artifact record (idempotent for an id already present)."""
        with self.engine.begin() as c:
            if c.execute(sa.select(artifacts.c.id).where(artifacts.c.id == rec.id)).first():
                return
            c.execute(artifacts.insert().values(
                id=rec.id, kind=rec.kind, name=rec.name, created_at=rec.created_at, stage_key=rec.stage_key,
                config_hash=rec.config_hash, code_version=rec.code_version,
                config=json.dumps(rec.config, sort_keys=True), metrics=json.dumps(rec.metrics, sort_keys=True)))
            for role, parent in rec.parents.items():
                c.execute(edges.insert().values(child=rec.id, parent=parent, role=role))
            for t in rec.tags:
                c.execute(tags.insert().values(artifact_id=rec.id, tag=t))

    def find_by_stage_key(self, stage_key: str) -> Record | None:
        with self.engine.connect() as c:
            row = c.execute(sa.select(artifacts.c.id).where(artifacts.c.stage_key == stage_key)
                            .order_by(artifacts.c.created_at.desc())).first()
        return self.get(row[0]) if row else None

    def resolve(self, ref: str) -> str:
        """Full id from an id prefix or a tag; errors name what matched."""
        with self.engine.connect() as c:
            ids = [r[0] for r in c.execute(sa.select(artifacts.c.id).where(artifacts.c.id.like(f"{ref}%")))]
            if not ids:
                ids = [r[0] for r in c.execute(sa.select(tags.c.artifact_id).where(tags.c.tag == ref))]
        if not ids:
            raise KeyError(f"no artifact with id prefix or tag {ref!r}")
        if len(ids) > 1:
            raise KeyError(f"{ref!r} is ambiguous: {', '.join(i[:12] for i in ids)}")
        return ids[0]

    def get(self, artifact_id: str) -> Record:
        with self.engine.connect() as c:
            row = c.execute(sa.select(artifacts).where(artifacts.c.id == artifact_id)).mappings().first()
            if row is None:
                raise KeyError(f"no artifact {artifact_id!r}")
            tag_list = [r[0] for r in c.execute(sa.select(tags.c.tag).where(tags.c.artifact_id == artifact_id))]
            parents = {r[1]: r[0] for r in c.execute(
                sa.select(edges.c.parent, edges.c.role).where(edges.c.child == artifact_id))}
        return Record(id=row["id"], kind=row["kind"], name=row["name"], created_at=row["created_at"],
                      stage_key=row["stage_key"], config_hash=row["config_hash"], code_version=row["code_version"],
                      config=json.loads(row["config"]), metrics=json.loads(row["metrics"]),
                      tags=sorted(tag_list), parents=parents)

    def tag(self, artifact_id: str, tag: str) -> None:
        with self.engine.begin() as c:
            exists = c.execute(sa.select(tags).where(tags.c.artifact_id == artifact_id, tags.c.tag == tag)).first()
            if not exists:
                c.execute(tags.insert().values(artifact_id=artifact_id, tag=tag))

    def search(self, kind: str | None = None, tag: str | None = None, since: str | None = None,
               until: str | None = None, metric: str | None = None) -> list[Record]:
        """Records matching every given filter, newest first.

        metric is `name>value`, `name<value`, `name>=value`, `name<=value` or `name=value` over the
        artifact's metrics (dotted names reach into nested metrics).
        """
        q = sa.select(artifacts.c.id).order_by(artifacts.c.created_at.desc())
        if kind:
            q = q.where(artifacts.c.kind == kind)
        if since:
            q = q.where(artifacts.c.created_at >= since)
        if until:
            q = q.where(artifacts.c.created_at <= until)
        if tag:
            q = q.where(artifacts.c.id.in_(sa.select(tags.c.artifact_id).where(tags.c.tag == tag)))
        with self.engine.connect() as c:
            ids = [r[0] for r in c.execute(q)]
        recs = [self.get(i) for i in ids]
        if metric:
            test = _metric_filter(metric)
            recs = [r for r in recs if test(r.metrics)]
        return recs

    def children(self, artifact_id: str) -> list[str]:
        with self.engine.connect() as c:
            return [r[0] for r in c.execute(sa.select(edges.c.child).where(edges.c.parent == artifact_id))]


def _metric_filter(expr: str):
    for op in (">=", "<=", ">", "<", "="):
        if op in expr:
            name, value = expr.split(op, 1)
            break
    else:
        raise ValueError(f"metric filter {expr!r}: expected name>value (or <, >=, <=, =)")
    name, value = name.strip(), float(value)

    def lookup(metrics: dict):
        node = metrics
        for part in name.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node if isinstance(node, (int, float)) else None

    ops = {">=": float.__ge__, "<=": float.__le__, ">": float.__gt__, "<": float.__lt__, "=": float.__eq__}

    def test(metrics: dict) -> bool:
        v = lookup(metrics)
        return v is not None and ops[op](float(v), value)

    return test


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
