"""Local transformers teacher: a causal LM on this machine (`teacher.backend: local`).

Sample requests (meta task "sample", or anything not "rate") are answered by batched generation
(left padding; greedy at temperature 0, else sampled under a seed derived from the batch).

Rate requests (meta task "rate") are NOT answered by generated digits. For each rubric dimension
the model gets that dimension's rubric line and the conversation (the rate request's last user
message), and the next-token distribution over the score labels "1".."5" is read; the overall
scalar is read the same way over "1".."10". Reading rule (format):
  - P(label) = product of the next-token probabilities along the label's token sequence (teacher
    forcing); a label whose sequence is a proper prefix of another's keeps only the mass that does
    not continue into it. With tokenizers that split digits (SmolLM2, the tiny test model) "10"
    is the tokens "1","0": P(10) = P("1")·P("0"|"1") and P(1) = P("1")·(1 - P("0"|"1")), which
    costs one extra scoring row per rating; where "10" is one token no extra row is needed.
  - `mass` = the summed label probability before renormalising (how much the model put on score
    tokens at all); `dist` = the renormalised distribution over the labels.
  - reduce "expected" (default): the score is the expected value, rounded half up to an integer
    (the verifier accepts integers only); "argmax": the most probable label. Both the expected
    value and the full distribution are kept in the raw text.
  - not-applicable (null) is not produced: a small model's probability of "N/A" is not a usable
    signal, so every dimension gets a score.
The raw text is one JSON object in the shape the rating parser accepts ({"scores", "overall",
"rationale"}) plus "token_probs" and "method"; the rationale is a templated note that says the
scores came from token probabilities. Ratings are deterministic (no sampling). A "rate_set"
request (ratings.mode: shuffled) is refused with a clear error: this reading rates one reply at a
time by construction.

Speed: the conversation comes first in every scoring prompt of a rating and the rubric line last,
so the shared prefix runs once and only the short suffixes (9 rows: 7 dimensions, the overall and
its "10" step) run on copies of its KV cache; logits are kept for the last position only.

Batching: `complete_batch(requests)` answers many requests at once; `complete(request)` may be
called from many threads (the threaded runner) and coalesces concurrent calls into batches of up
to `teacher.local_batch_size` requests; a rating pass holds at most that many scoring rows (at
least one rating), which bounds memory. The model is loaded on first use, so a fully cached run
never loads it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import threading

from hominem.dims import load_rubric

SCORING_VERSION = 1
DIM_LABELS = tuple(str(i) for i in range(1, 6))
OVERALL_LABELS = tuple(str(i) for i in range(1, 11))
log = logging.getLogger("hominem.teachers")


def label_probabilities(seqs: dict[str, tuple[int, ...]], step_probs) -> tuple[dict[str, float], float]:
    """(renormalised {label: p}, label mass) from per-prefix next-token probabilities.

    seqs: label -> its token ids; step_probs(prefix: tuple) -> {token_id: prob} of the next token
    after the prompt plus prefix. Pure given step_probs.
    """
    raw = {}
    for lab, seq in seqs.items():
        p = 1.0
        for k in range(len(seq)):
            p *= step_probs(seq[:k]).get(seq[k], 0.0)
        raw[lab] = p
    excl = {}
    for lab, seq in seqs.items():
        longer = sum(raw[m] for m, s in seqs.items() if len(s) > len(seq) and s[:len(seq)] == seq)
        excl[lab] = max(0.0, raw[lab] - longer)
    mass = sum(excl.values())
    n = len(excl)
    dist = {lab: (p / mass if mass > 0 else 1.0 / n) for lab, p in excl.items()}
    return dist, mass


def reduce_distribution(dist: dict[str, float], how: str) -> tuple[int, float]:
    """(integer score, expected value) of a {label: p} distribution; how is expected or argmax."""
    expected = sum(int(lab) * p for lab, p in dist.items())
    if how == "argmax":
        return int(max(dist, key=lambda lab: (dist[lab], -int(lab)))), expected
    return int(expected + 0.5), expected


class _Coalescer:
    """Turns concurrent single calls into batches: whoever finds the worker idle runs the queue."""

    def __init__(self, run_batch, max_batch: int):
        self.run_batch, self.max_batch = run_batch, max(1, max_batch)
        self.cv = threading.Condition()
        self.pending: list[dict] = []
        self.busy = False

    def submit(self, item):
        slot = {"item": item, "done": False, "out": None}
        with self.cv:
            self.pending.append(slot)
        while True:
            with self.cv:
                while self.busy and not slot["done"]:
                    self.cv.wait()
                if slot["done"]:
                    return slot["out"]
                self.busy = True
                batch, self.pending = self.pending[:self.max_batch], self.pending[self.max_batch:]
            outs = [RuntimeError("local teacher: the batch was interrupted")] * len(batch)
            try:
                outs = self.run_batch([s["item"] for s in batch])
            except Exception as e:  # a failure of the whole batch fails each request in it
                outs = [e] * len(batch)
            finally:  # even on KeyboardInterrupt: never leave the others waiting
                with self.cv:
                    for s, o in zip(batch, outs):
                        s["out"], s["done"] = o, True
                    self.busy = False
                    self.cv.notify_all()


class LocalTeacher:
    def __init__(self, model: str, batch_size: int = 8, reduce: str = "expected", max_length: int = 2048,
                 device: str | None = None):
        if reduce not in ("expected", "argmax"):
            raise ValueError(f"teacher.local_score_reduce: {reduce!r} is not expected or argmax")
        self.model_name, self.batch_size, self.reduce = model, max(1, batch_size), reduce
        self.max_length, self.device = max_length, device
        self.name = f"local:{model}:{reduce}:s{SCORING_VERSION}"
        self._model = self._tok = None
        self._load_lock, self._run_lock = threading.Lock(), threading.Lock()
        self._coalescer = _Coalescer(self.complete_batch, self.batch_size)
        self._label_cache: dict[tuple, dict] = {}

    @classmethod
    def from_config(cls, cfg) -> "LocalTeacher":
        return cls(cfg.model, cfg.local_batch_size, cfg.local_score_reduce, cfg.local_max_length, cfg.local_device)

    # -- public API ---------------------------------------------------------------------------
    def complete(self, request) -> str:
        out = self._coalescer.submit(request)
        if isinstance(out, BaseException):
            raise out
        return out

    def complete_batch(self, requests) -> list:
        """One entry per request: its raw text, or the exception that request alone raised.

        A failure of the whole batch (e.g. the model cannot be loaded) raises.
        """
        with self._run_lock:
            self._ensure_model()
            out: list = [None] * len(requests)
            tasks = [r.meta_dict().get("task") for r in requests]
            rate = [i for i, t in enumerate(tasks) if t == "rate"]
            sample = [i for i, t in enumerate(tasks) if t not in ("rate", "rate_set")]
            for i in (i for i, t in enumerate(tasks) if t == "rate_set"):
                out[i] = ValueError("local teacher: token-probability ratings rate each candidate on its own; "
                                    "use ratings.mode: independent (a set of replies in one request is not supported)")
            for i, text in zip(rate, self._rate([requests[i] for i in rate])):
                out[i] = text
            for i, text in zip(sample, self._generate([requests[i] for i in sample])):
                out[i] = text
            return out

    # -- model plumbing -----------------------------------------------------------------------
    def _ensure_model(self) -> None:
        with self._load_lock:
            if self._model is not None:
                return
            import torch

            from hominem.models import load_causal_lm

            model, tok = load_causal_lm(self.model_name)
            self.device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            self._model, self._tok = model.to(self.device), tok
            # transformers renamed past_key_values to cache (5.2x); accept both
            self._cache_kw = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
            limit = getattr(model.config, "max_position_embeddings", None) or self.max_length
            self.max_length = min(self.max_length, int(limit))

    def _render(self, messages: list[tuple[str, str]], prefill: str = "") -> list[int]:
        tok = self._tok
        msgs = [{"role": r, "content": c} for r, c in messages]
        if tok.chat_template:
            text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) + prefill
            return tok(text, add_special_tokens=False)["input_ids"]
        text = "".join(f"{m['role'].capitalize()}: {m['content']}\n\n" for m in msgs) + "Assistant:" + prefill
        return tok(text)["input_ids"]

    def _fit(self, ids: list[int], room: int = 0) -> tuple[list[int], bool]:
        """Middle-truncate to the context (keeps the instructions at the head and the end)."""
        limit = max(8, self.max_length - room)
        if len(ids) <= limit:
            return ids, False
        head = limit // 4
        return ids[:head] + ids[len(ids) - (limit - head):], True

    def _pad_left(self, seqs: list[list[int]]):
        import torch

        width = max(len(s) for s in seqs)
        pad = self._tok.pad_token_id if self._tok.pad_token_id is not None else 0
        ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=self.device)
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=self.device)
        return ids, mask

    def _suffix_probs(self, prefixes: list[list[int]], suffixes: list[list[list[int]]]) -> list[list]:
        """Next-token probabilities after prefix_i + each of its suffixes, computing each prefix once.

        The prefixes run left-padded in one batch; the KV cache is then gathered to one row per
        suffix, and the suffixes run padded between prefix and suffix (masked, with positions
        continuing the prefix) so that every row ends at the last position.
        """
        import torch

        with torch.inference_mode():
            ids, mask = self._pad_left(prefixes)
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            first = self._model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1)
            cache = getattr(first, self._cache_kw)
            owner = [i for i, sufs in enumerate(suffixes) for _ in sufs]
            cache.batch_select_indices(torch.tensor(owner, device=self.device))
            sids, smask = self._pad_left([s for sufs in suffixes for s in sufs])
            start = mask.sum(-1)[owner].unsqueeze(-1)
            spos = start + (smask.cumsum(-1) - 1).clamp(min=0)
            logits = self._model(input_ids=sids, attention_mask=torch.cat([mask[owner], smask], -1),
                                 position_ids=spos, logits_to_keep=1, **{self._cache_kw: cache}).logits
            probs = torch.softmax(logits[:, -1, :].float(), dim=-1).cpu()
        out, k = [], 0
        for sufs in suffixes:
            out.append([probs[k + j] for j in range(len(sufs))])
            k += len(sufs)
        return out

    # -- rating by token probabilities --------------------------------------------------------
    def _label_seqs(self, labels: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
        """Token ids of each label as it follows the prompt's end (checked against a real prompt end)."""
        if labels not in self._label_cache:
            anchor = self._render([("user", "x")])
            seqs = {}
            for lab in labels:
                ids = self._render([("user", "x")], prefill=lab)
                seqs[lab] = tuple(ids[len(anchor):]) if ids[:len(anchor)] == anchor else tuple(
                    self._tok(lab, add_special_tokens=False)["input_ids"])
            self._label_cache[labels] = seqs
        return self._label_cache[labels]

    def _rating_job(self, request, rubric):
        """(shared prefix ids, rows [(key, label prefix, suffix ids)], truncated) of one rate request."""
        users = [c for r, c in request.messages if r == "user"]
        if not users:
            raise ValueError("local teacher: a rate request needs a user message with the conversation")
        prompts = list(_scoring_prompts(users[-1], rubric))
        rendered = [self._render(msgs) for _, msgs, _ in prompts]
        cut = _common_prefix(rendered)
        rows = []
        for (key, _, labels), ids in zip(prompts, rendered):
            for pre in sorted({seq[:k] for seq in self._label_seqs(labels).values() for k in range(len(seq))}):
                rows.append((key, pre, ids[cut:] + list(pre)))
        prefix, truncated = self._fit(rendered[0][:cut], room=max(len(r[2]) for r in rows))
        return prefix, rows, truncated

    def _rate(self, requests) -> list:
        rubric = load_rubric()
        outs, jobs = [None] * len(requests), []
        for n, req in enumerate(requests):
            try:
                jobs.append((n, *self._rating_job(req, rubric)))
            except ValueError as e:
                outs[n] = e
        jobs.sort(key=lambda j: len(j[1]))  # similar lengths share a batch: less padding
        # at most batch_size scoring rows per pass (at least one request): each row holds its own copy
        # of its request's prefix KV cache, so rows, not requests, bound the memory
        per_pass = max(1, self.batch_size // (len(jobs[0][2]) if jobs else 1))
        for k in range(0, len(jobs), per_pass):
            chunk = jobs[k:k + per_pass]
            probs = self._suffix_probs([j[1] for j in chunk], [[r[2] for r in j[2]] for j in chunk])
            for (n, _, rows, cut), row_probs in zip(chunk, probs):
                found = {(key, pre): p for (key, pre, _), p in zip(rows, row_probs)}
                res = {}
                for key, _, labels in _scoring_prompts("", rubric):
                    seqs = self._label_seqs(labels)
                    dist, mass = label_probabilities(seqs, lambda pre, key=key: _as_dict(found[(key, pre)], seqs))
                    score, expected = reduce_distribution(dist, self.reduce)
                    res[key] = {"score": score, "expected": round(expected, 4), "mass": round(mass, 4),
                                "dist": {lab: round(v, 5) for lab, v in dist.items()}}
                outs[n] = _rating_json(res, rubric.names, self.model_name, self.reduce, cut)
        return outs

    # -- generation ---------------------------------------------------------------------------
    def _generate(self, requests) -> list[str]:
        import torch

        out: list = [None] * len(requests)
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((float(r.temperature), int(r.max_tokens)), []).append(i)
        for (temp, max_new), idxs in sorted(groups.items()):
            for k in range(0, len(idxs), self.batch_size):
                chunk = idxs[k:k + self.batch_size]
                fitted = [self._fit(self._render(requests[i].messages), room=max_new) for i in chunk]
                if any(cut for _, cut in fitted):
                    log.warning("local teacher: %d prompt(s) cut in the middle to fit %d tokens",
                                sum(cut for _, cut in fitted), self.max_length - max_new)
                seqs = [ids for ids, _ in fitted]
                ids, mask = self._pad_left(seqs)
                kw = {"do_sample": True, "temperature": temp, "top_k": 0} if temp > 0 else {"do_sample": False}
                seed = int(hashlib.sha256(json.dumps([requests[i].to_dict() for i in chunk], sort_keys=True,
                                                     default=str).encode()).hexdigest()[:8], 16)
                with torch.inference_mode(), torch.random.fork_rng():  # leaves the global RNG as it was
                    torch.manual_seed(seed)
                    gen = self._model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new,
                                               pad_token_id=self._tok.pad_token_id, **kw)
                for j, i in enumerate(chunk):
                    out[i] = self._tok.decode(gen[j, ids.shape[1]:], skip_special_tokens=True).strip()
        return out


def _common_prefix(seqs: list[list[int]]) -> int:
    """Length of the longest common prefix, leaving at least one token in every sequence."""
    n = min(len(x) for x in seqs) - 1
    for i in range(n):
        if any(x[i] != seqs[0][i] for x in seqs):
            return i
    return max(n, 0)


def _as_dict(probs, seqs: dict[str, tuple[int, ...]]) -> dict[int, float]:
    wanted = {t for s in seqs.values() for t in s}
    return {t: float(probs[t]) for t in wanted}


SCORER_SYSTEM = "You are a careful rater of assistant replies. You answer with a score only."


def _scoring_prompts(material: str, rubric):
    """(key, messages, labels) for each dimension and the overall scalar of one rate request.

    The conversation comes first and the dimension's rubric line last, so all the prompts of one
    request share a long token prefix (computed once, see LocalTeacher._suffix_probs).
    """
    for d in rubric.dimensions:
        name = d.name.replace("_", " ")
        question = (f"Rate the reply on {name}: {d.definition}\n{rubric.dim_min} = {d.low}\n3 = {d.mid}\n"
                    f"{rubric.dim_max} = {d.high}\nAnswer with a single digit from {rubric.dim_min} to {rubric.dim_max}.")
        yield d.name, (("system", SCORER_SYSTEM), ("user", f"{material}\n\n{question}")), DIM_LABELS
    question = (f"Rate the reply's overall quality: {rubric.scalar_definition}\nAnswer with a single number from "
                f"{rubric.scalar_min} to {rubric.scalar_max}.")
    yield "overall", (("system", SCORER_SYSTEM), ("user", f"{material}\n\n{question}")), OVERALL_LABELS


def _rating_json(res: dict, dims: tuple[str, ...], model: str, reduce: str, truncated: bool) -> str:
    exp = {d: res[d]["expected"] for d in dims}
    lo, hi = min(exp, key=exp.get), max(exp, key=exp.get)
    mass = sum(r["mass"] for r in res.values()) / len(res)
    rationale = (f"Scores read from the next-token probabilities of the score tokens of {model} "
                 f"({'expected value, rounded' if reduce == 'expected' else 'most probable label'}), not from "
                 f"generated text; lowest {lo} ({exp[lo]:.2f}), highest {hi} ({exp[hi]:.2f}); "
                 f"mean score-token mass {mass:.2f}" + ("; the conversation was truncated." if truncated else "."))
    return json.dumps({"scores": {d: res[d]["score"] for d in dims}, "overall": res["overall"]["score"],
                       "rationale": rationale, "method": f"token-probabilities/{reduce}/v{SCORING_VERSION}",
                       "truncated": truncated, "token_probs": res})
