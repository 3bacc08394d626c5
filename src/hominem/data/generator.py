"""Prompt generator (`prompts.source: templates`): scenario skeletons from YAML, filled and perturbed.

A skeleton (data/scenarios.yaml) has a category, situation templates with {slots}, optional
background details, stakes, complicating details, asks and slot values (an entry `@pool` pulls in a
shared pool; a value `text|she` also defines {name_they} / {name_them} / {name_their}), and optionally
the speakers that fit it (speaker_tags), the injected conflicts that fit it (conflicts) and, for the
tradeoff category, the two rubric dimensions in tension (tradeoff). One prompt:

  [speaker intro] situation [details, by length] [stakes] [complications: difficulty - 1]
  [injected conflict] ask     -> register rewrite -> optionally split into a multi-turn chat

Every choice comes from random.Random(prompt seed); prompt seeds come from random.Random(run seed),
so the same config gives the same prompts. Near-duplicates (data/neardup.py: character 5-gram
Jaccard above a threshold) are rejected as they arrive and reported, never silently dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from random import Random

import yaml

from hominem.data.neardup import NearDupIndex
from hominem.dims import DIMENSIONS
from hominem.types import Prompt, as_text

GENERATOR_VERSION = 1
EPOCH = "1970-01-01T00:00:00Z"
MAX_ATTEMPTS_PER_PROMPT = 20  # give up (with an error naming the shortfall) after 20 * n drafts
SLOT = re.compile(r"\{([a-z][a-z0-9_]*)\}")
SKELETON_KEYS = {"id", "category", "relationship", "speaker_tags", "tradeoff", "situation", "slots", "details",
                 "stakes", "complications", "ask", "conflicts"}
PRONOUNS = {"she": ("she", "her", "her"), "he": ("he", "him", "his"), "they": ("they", "them", "their")}


class ScenarioError(ValueError):
    """The scenarios file is malformed; the message names the file, skeleton and field."""


@dataclass
class Scenarios:
    version: int
    skeletons: list[dict]
    pools: dict[str, list[str]]
    speakers: list[dict]
    conflicts: list[dict]
    followups: dict[str, list[str]]
    source: str = ""


def bundled_scenarios_path() -> Path:
    return Path(str(resources.files("hominem").joinpath("data/scenarios.yaml")))


def load_scenarios(path: str | Path | None = None) -> Scenarios:
    path = Path(path) if path else bundled_scenarios_path()
    try:
        raw = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ScenarioError(f"{path}: cannot read scenarios: {e}") from None
    sc = Scenarios(version=int(raw.get("version", 1)), skeletons=raw.get("skeletons") or [],
                   pools=raw.get("pools") or {}, speakers=raw.get("speakers") or [],
                   conflicts=raw.get("conflicts") or [], followups=raw.get("followups") or {}, source=str(path))
    seen = set()
    for i, s in enumerate(sc.skeletons):
        where = f"{path}: skeleton {s.get('id', f'#{i}')!r}"
        for f in ("id", "category", "situation", "ask", "complications"):
            if not s.get(f):
                raise ScenarioError(f"{where}: missing field {f!r}")
        unknown = set(s) - SKELETON_KEYS
        if unknown:
            raise ScenarioError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        if s["id"] in seen:
            raise ScenarioError(f"{where}: duplicate id")
        seen.add(s["id"])
        if len(s["complications"]) < 2:
            raise ScenarioError(f"{where}: needs at least 2 complications (difficulty 3 uses two)")
        t = s.get("tradeoff")
        if (t is not None or s["category"] == "tradeoff") and (
                not isinstance(t, list) or len(set(t)) != 2 or any(d not in DIMENSIONS for d in t)):
            raise ScenarioError(f"{where}: tradeoff must name two different rubric dimensions, got {t!r}")
        _check_slots(sc, s, where)
    conflict_ids = {c.get("id") for c in sc.conflicts}
    for s in sc.skeletons:
        for cid in s.get("conflicts") or ():
            if cid not in conflict_ids:
                raise ScenarioError(f"{path}: skeleton {s['id']!r}: unknown conflict {cid!r}")
    for c in sc.conflicts:
        if len(c.get("tradeoff") or ()) != 2 or any(d not in DIMENSIONS for d in c["tradeoff"]):
            raise ScenarioError(f"{path}: conflict {c.get('id')!r}: tradeoff must name two rubric dimensions")
    return sc


def _texts(skel: dict) -> list[str]:
    return [t for f in ("situation", "details", "stakes", "complications", "ask") for t in skel.get(f) or ()]


def _check_slots(sc: Scenarios, skel: dict, where: str) -> None:
    """Every {slot} a skeleton can reach (through its texts, slot values, conflicts, speakers) has values."""
    todo = _texts(skel) + [c["text"] for c in sc.conflicts] + [s["intro"] for s in sc.speakers]
    seen: set[str] = set()
    while todo:
        for name in SLOT.findall(todo.pop()):
            base, _, form = name.rpartition("_")
            name = base if base and form in ("they", "them", "their") else name
            if name in seen:
                continue
            seen.add(name)
            if name not in (skel.get("slots") or {}) and name not in sc.pools:
                raise ScenarioError(f"{where}: no values for slot {{{name}}} (not in its slots or the pools)")
            todo.extend(_values(sc, skel, name))


# ---- filling slots ----------------------------------------------------------------------------

def _values(sc: Scenarios, skel: dict, name: str) -> list[str]:
    vals = (skel.get("slots") or {}).get(name, sc.pools.get(name))
    if vals is None:
        raise ScenarioError(f"{sc.source}: skeleton {skel['id']!r}: no values for slot {{{name}}}")
    out = []
    for v in vals:
        v = str(v)
        if v.startswith("@"):
            if v[1:] not in sc.pools:
                raise ScenarioError(f"{sc.source}: skeleton {skel['id']!r}: unknown pool {v!r}")
            out.extend(str(x) for x in sc.pools[v[1:]])
        else:
            out.append(v)
    return out


def fill(text: str, sc: Scenarios, skel: dict, rng: Random, chosen: dict[str, str]) -> str:
    """Replace every {slot} (recursively, at most 4 levels); a slot keeps its value within a prompt.

    {x_they}, {x_them}, {x_their} are the pronouns of slot x's value (`text|she`; default they).
    """
    def choose(name: str) -> None:
        if name in chosen:
            return
        value, _, pron = rng.choice(_values(sc, skel, name)).partition("|")
        forms = PRONOUNS.get(pron or "they")
        if forms is None:
            raise ScenarioError(f"{sc.source}: skeleton {skel['id']!r}: slot {name}: unknown pronoun {pron!r}")
        chosen[name] = value
        chosen.update({f"{name}_{f}": w for f, w in zip(("they", "them", "their"), forms)})

    def sub(m: re.Match) -> str:
        name = m.group(1)
        base, _, form = name.rpartition("_")
        if base and form in ("they", "them", "their") and name not in chosen:
            choose(base)
        choose(name)
        return chosen[name]

    for _ in range(4):
        new = SLOT.sub(sub, text)
        if new == text:
            break
        text = new
    if SLOT.search(text):
        raise ScenarioError(f"{sc.source}: skeleton {skel['id']!r}: slots nest too deeply in {text[:60]!r}")
    return text


def capitalise(text: str) -> str:
    """Upper-case the first letter of every sentence."""
    return re.sub(r"(^|[.!?]\s+|\n\s*)([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)


# ---- registers ---------------------------------------------------------------------------------

CONTRACTIONS = [("I am", "I'm"), ("do not", "don't"), ("does not", "doesn't"), ("did not", "didn't"),
                ("is not", "isn't"), ("was not", "wasn't"), ("cannot", "can't"), ("will not", "won't"),
                ("I have", "I've"), ("I would", "I'd"), ("I will", "I'll"), ("it is", "it's"),
                ("that is", "that's"), ("they are", "they're"), ("you are", "you're"), ("we are", "we're"),
                ("have not", "haven't"), ("would not", "wouldn't"), ("should not", "shouldn't"),
                ("could not", "couldn't"), ("there is", "there's"), ("what is", "what's")]
CONTRACT = [(a, b) for a, b in CONTRACTIONS if a != "I have"]  # "I've a date" reads oddly
TEXTING = [("you", "u"), ("your", "ur"), ("because", "bc"), ("to be honest", "tbh"), ("I don't know", "idk"),
           ("really", "rly"), ("tonight", "tonite"), ("please", "pls"), ("people", "ppl"), ("though", "tho")]


def _swap(text: str, pairs, forward: bool, rng: Random | None = None, p: float = 1.0) -> str:
    for a, b in pairs:
        src, dst = (a, b) if forward else (b, a)
        pat = re.compile(r"\b" + re.escape(src) + r"\b", re.IGNORECASE)
        text = pat.sub(lambda m: (dst if m.group(0)[0].islower() or dst[0] == "I" else dst[0].upper() + dst[1:])
                       if rng is None or rng.random() < p else m.group(0), text)
    return text


def apply_register(text: str, register: str, rng: Random, first: bool = True, last: bool = True) -> str:
    """Rewrite one user message in a register: plain | formal | casual | texting | non_native.

    first/last: whether this is the conversation's first/last user message (greetings, sign-offs and
    casual openers go only there).
    """
    if register == "plain":
        return text
    if register == "formal":
        text = _swap(text, CONTRACTIONS, forward=False)
        text = re.sub(r"\bmy mum\b", "my mother", re.sub(r"\bmy dad\b", "my father", text))
        greet = rng.choice(["Hello.", "Good afternoon.", "Dear assistant,", "Hello,"])
        close = rng.choice(["Thank you in advance.", "I would appreciate your view.", "Many thanks."])
        if first:
            text = f"{greet}\n\n{text}" if greet.endswith(",") else f"{greet} {text}"
        return f"{text}\n\n{close}" if last and greet.endswith(",") else f"{text} {close}" if last else text
    if register == "casual":
        text = _swap(text, CONTRACT, forward=True)
        opener = rng.choice(["ok so ", "so ", "honestly ", "right, so ", "hey, "])
        if not first:
            return text
        return opener + (text[0].lower() if text[1:2].islower() else text[0]) + text[1:]
    if register == "texting":
        text = _swap(_swap(text, CONTRACT, forward=True), TEXTING, forward=True, rng=rng, p=0.7)
        text = re.sub(r"'", "", text).lower()
        text = re.sub(r"\.(\s+|$)", lambda m: rng.choice([" ", "\n", " "]) if m.group(1) else "", text)
        return re.sub(r"\?", lambda m: "??" if rng.random() < 0.3 else "?", text)
    if register == "non_native":
        text = _swap(text, CONTRACTIONS, forward=False)
        text = re.sub(r"\b(the|a|an) (?=[a-z])", lambda m: "" if rng.random() < 0.45 else m.group(0), text)
        text = re.sub(r"\bI have been\b", lambda m: "I am" if rng.random() < 0.5 else m.group(0), text)
        if rng.random() < 0.35:
            text += " " + rng.choice(["Sorry for my English.", "English is not my first language, sorry.",
                                      "Please explain simple."])
        return text
    raise ValueError(f"unknown register {register!r}")


# ---- one prompt --------------------------------------------------------------------------------

@dataclass
class Draft:
    input: str | list[dict]
    category: str
    difficulty: int
    seed: int
    extra: dict = field(default_factory=dict)


def _weighted(rng: Random, weights: dict) -> str:
    keys = [k for k in weights if weights[k] > 0]
    if not keys:
        raise ValueError(f"all weights are zero: {weights}")
    return rng.choices(keys, [weights[k] for k in keys])[0]


def build(sc: Scenarios, skel: dict, seed: int, pc) -> Draft:
    """One prompt from one skeleton; every choice comes from Random(seed). pc: the PerturbConfig."""
    rng = Random(seed)
    chosen: dict[str, str] = {}
    difficulty = int(_weighted(rng, {i + 1: w for i, w in enumerate(pc.difficulty_weights)}))
    length = _weighted(rng, pc.lengths)
    register = _weighted(rng, pc.registers)
    tradeoff = list(skel.get("tradeoff") or []) or None
    n_comp, conflict = difficulty - 1, None
    pool = [c for c in sc.conflicts if c["id"] in skel["conflicts"]] if "conflicts" in skel else \
        [c for c in sc.conflicts if skel["category"] in c.get("categories", ())]
    if not tradeoff and n_comp and pool and rng.random() < pc.conflict_fraction:
        conflict = rng.choice(pool)
        tradeoff, n_comp = list(conflict["tradeoff"]), n_comp - 1
    speakers = [s for s in sc.speakers if not skel.get("speaker_tags")
                or set(s.get("tags", [])) & set(skel["speaker_tags"])]
    speaker = rng.choice(speakers) if speakers and rng.random() < pc.speaker_fraction else None

    f = lambda t: fill(t, sc, skel, rng, chosen)  # noqa: E731
    opening = [f(rng.choice(skel["situation"]))]
    details = list(skel.get("details") or [])
    rng.shuffle(details)
    n_details = {"short": 0, "medium": min(1, len(details)), "long": min(3, len(details))}[length]
    opening += [f(d) for d in details[:n_details]]
    middle = [f(rng.choice(skel["stakes"]))] if skel.get("stakes") and length != "short" else []
    comps = rng.sample(skel["complications"], n_comp)
    closing = [f(c) for c in comps] + ([f(conflict["text"])] if conflict else []) + [f(rng.choice(skel["ask"]))]
    if speaker:
        opening.insert(0, f(speaker["intro"]))

    multi = rng.random() < pc.multi_turn_fraction
    if multi:
        turns = [t for t in ([opening, middle, closing] if length == "long" else [opening + middle, closing]) if t]
        followups = list(sc.followups.get(skel["category"]) or sc.followups.get("default") or ["Tell me more."])
        rng.shuffle(followups)
        inp: str | list[dict] = []
        for k, t in enumerate(turns):
            if k:
                inp.append({"role": "assistant", "content": followups[(k - 1) % len(followups)]})
            inp.append({"role": "user", "content": apply_register(capitalise(" ".join(t)), register, rng,
                                                                  first=k == 0, last=k == len(turns) - 1)})
    else:
        inp = apply_register(capitalise(" ".join(opening + middle + closing)), register, rng)
    extra = {"source": "templates", "generator_version": GENERATOR_VERSION, "template": skel["id"],
             "relationship": skel.get("relationship"), "speaker": speaker["desc"] if speaker else None,
             "tradeoff": tradeoff,
             "perturbations": {"register": register, "length": length, "speaker": speaker["id"] if speaker else None,
                               "multi_turn": multi, "complications": len(comps),
                               "conflict": conflict["id"] if conflict else None},
             "slots": {k: v for k, v in sorted(chosen.items()) if not k.endswith(("_they", "_them", "_their"))}}
    return Draft(inp, skel["category"], difficulty, seed, extra)


# ---- the whole set -----------------------------------------------------------------------------

def generate(cfg, seed: int) -> tuple[list[Prompt], list[dict], dict]:
    """n prompts spread evenly over the configured categories. cfg: the PromptsConfig.

    Returns (prompts without split, rejected near-duplicates, statistics).
    """
    sc = load_scenarios(cfg.scenarios_path)
    by_cat = {c: [s for s in sc.skeletons if s["category"] == c] for c in cfg.categories}
    for c, skels in by_cat.items():
        if not skels:
            raise ScenarioError(f"{sc.source}: no skeletons for category {c!r}")
    quota = {c: cfg.n // len(cfg.categories) + (i < cfg.n % len(cfg.categories))
             for i, c in enumerate(cfg.categories)}
    master = Random(seed)
    index = NearDupIndex(cfg.dedup_threshold)
    prompts, rejected, attempts = [], [], 0
    timestamp = cfg.timestamp or EPOCH
    for c in cfg.categories:
        order, made, k = [], 0, 0
        while made < quota[c]:
            if attempts >= MAX_ATTEMPTS_PER_PROMPT * max(1, cfg.n):
                raise ScenarioError(f"{sc.source}: only {len(prompts)} of {cfg.n} distinct prompts after {attempts} "
                                    f"attempts; add skeletons/slot values or raise prompts.dedup_threshold")
            if not order:  # round-robin over a fresh shuffle of the category's skeletons
                order = list(by_cat[c])
                master.shuffle(order)
            skel, pseed = order.pop(), master.getrandbits(32)
            attempts += 1
            d = build(sc, skel, pseed, cfg.perturb)
            pid = f"gen-{c}-{k:04d}"
            k += 1
            ok, dup, sim = index.add(pid, as_text(d.input))
            if not ok:
                rejected.append({"id": pid, "reason": "near-duplicate", "duplicate_of": dup,
                                 "similarity": round(sim, 4), "template": skel["id"], "input": d.input})
                continue
            prompts.append(Prompt(id=pid, input=d.input, category=c, difficulty=d.difficulty, seed=d.seed,
                                  timestamp=timestamp, split="", extra=d.extra))
            made += 1
    stats = {"generated": attempts, "near_duplicates_removed": len(rejected), "kept": len(prompts),
             "scenarios_version": sc.version, "generator_version": GENERATOR_VERSION,
             "templates_used": len({p.extra["template"] for p in prompts})}
    return prompts, rejected, stats
