"""Walking lineage edges: any artifact back to its prompts, teacher and configs."""

from __future__ import annotations

from hominem.store.registry import Registry


def ancestry(registry: Registry, artifact_id: str) -> dict:
    """The artifact and all its ancestors as a nested tree: {record..., "parents": {role: subtree}}."""
    rec = registry.get(artifact_id)
    node = rec.to_dict()
    node["parents"] = {role: ancestry(registry, pid) for role, pid in sorted(rec.parents.items())}
    return node


def render(tree: dict, indent: str = "", role: str | None = None, seen: set | None = None) -> list[str]:
    """Human-readable lines of an ancestry tree, one artifact per line with its key facts.

    An artifact reached a second time (a diamond in the graph) is named, not expanded again.
    """
    seen = set() if seen is None else seen
    head = f"{role}: " if role else ""
    line = f"{indent}{head}{tree['kind']} {tree['id'][:12]}"
    if tree["id"] in seen:
        return [line + "  (shown above)"]
    seen.add(tree["id"])
    lines = [line + f"  {tree['name']}  {tree['created_at']}"
             + (f"  [{', '.join(tree['tags'])}]" if tree["tags"] else "")]
    for f in _key_facts(tree):
        lines.append(f"{indent}    {f}")
    for r, sub in tree["parents"].items():
        lines.extend(render(sub, indent + "  ", r, seen))
    return lines


def _key_facts(tree: dict) -> list[str]:
    cfg = tree.get("config") or {}
    facts = [f"config {tree['config_hash'][:12]}  code {tree['code_version']}"]
    teacher = cfg.get("teacher")
    if isinstance(teacher, dict):
        facts.append(f"teacher backend={teacher.get('backend')} model={teacher.get('model')}")
    backbone = (cfg.get("reward") or {}).get("backbone")
    model = (cfg.get("policy") or {}).get("model")
    facts += [f"backbone {backbone}"] * bool(backbone) + [f"model {model}"] * bool(model)
    m = tree.get("metrics") or {}
    shown = {k: v for k, v in m.items() if isinstance(v, (int, float))}
    if shown:
        facts.append("metrics " + ", ".join(f"{k}={v:.4g}" for k, v in list(shown.items())[:6]))
    return facts
