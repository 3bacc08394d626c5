"""Teacher throughput: hominem vs distilabel on the same 500-rating job against the same slow server.

    python benchmarks/teacher_throughput.py [--requests 500] [--latency 0.1] [--concurrency 16]

One invocation starts a loopback OpenAI-compatible chat-completions server (its own process,
asyncio, keep-alive; it sleeps `--latency` seconds per request and answers a valid rating JSON),
then runs the same rating requests through
  - floor:      bare asyncio sockets (a reference for what machine + server allow, not a tool);
  - hominem:    hominem.teachers.runner.run_requests with the `openai` backend, a fresh cache;
  - distilabel: a Pipeline LoadDataFromDicts >> ChatGeneration(OpenAILLM) in distilabel's own
                virtualenv (benchmarks/setup_distilabel.sh), input_batch_size x replicas = concurrency,
                use_cache=False and a fresh cache_dir,
and prints each tool's wall time and throughput, the throughput ratio, the ideal time
(requests x latency / concurrency) and each tool's distance from it. The server counts the
requests it served, the most it had in flight at once, and a digest of the distinct request
messages, so the two runs are shown to have done the same work.

The file is also run in two helper modes: `--serve` (the server) and `--distilabel-job` (run by
distilabel's interpreter; it imports only the standard library and distilabel).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import inspect
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VENV = ROOT / ".bench" / "distilabel-venv"


# ---------------------------------------------------------------- server (--serve)
def serve(latency: float) -> None:
    """OpenAI-compatible /v1/chat/completions; GET /stats, POST /reset. Prints its port on stdout."""
    from hominem.dims import load_rubric

    names = load_rubric().names
    content = json.dumps({"scores": {n: 3 for n in names}, "overall": 6,
                          "rationale": "Attentive and accurate, slightly generic."})
    st: dict = {}

    def reset() -> None:
        st.update(served=0, inflight=0, max_inflight=0, first=None, last=None, digests=set(), params=set())

    def reply(status: int, payload: dict, keep: bool) -> bytes:
        body = json.dumps(payload).encode()
        head = (f"HTTP/1.1 {status} {'OK' if status == 200 else 'Not Found'}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: {'keep-alive' if keep else 'close'}\r\n\r\n")
        return head.encode() + body

    async def completion(body: bytes) -> dict:
        now = time.perf_counter()
        st["first"] = st["first"] or now
        st["inflight"] += 1
        st["max_inflight"] = max(st["max_inflight"], st["inflight"])
        req = json.loads(body)
        st["digests"].add(hashlib.sha256(json.dumps(req["messages"], sort_keys=True).encode()).hexdigest())
        st["params"].add(json.dumps({k: req.get(k) for k in ("temperature", "max_tokens", "response_format")},
                                    sort_keys=True))
        await asyncio.sleep(latency)
        st["inflight"] -= 1
        st["served"] += 1
        st["last"] = time.perf_counter()
        return {"id": f"chatcmpl-{st['served']}", "object": "chat.completion", "created": int(time.time()),
                "model": req.get("model", "bench"), "choices": [{
                    "index": 0, "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop", "logprobs": None}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}

    def stats() -> dict:
        digest = hashlib.sha256("".join(sorted(st["digests"])).encode()).hexdigest()[:16]
        span = (st["last"] - st["first"]) if st["first"] and st["last"] else 0.0
        return {"served": st["served"], "max_inflight": st["max_inflight"], "span_s": span,
                "distinct": len(st["digests"]), "digest": digest, "params": sorted(st["params"])}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                method, path, _ = line.decode().split(" ", 2)
                headers = {}
                while (h := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    k, _, v = h.decode().partition(":")
                    headers[k.strip().lower()] = v.strip()
                n = int(headers.get("content-length", 0))
                body = await reader.readexactly(n) if n else b""
                keep = headers.get("connection", "").lower() != "close"
                if method == "POST" and path.endswith("/chat/completions"):
                    out = reply(200, await completion(body), keep)
                elif path == "/stats":
                    out = reply(200, stats(), keep)
                elif path == "/reset":
                    reset()
                    out = reply(200, {"ok": True}, keep)
                else:
                    out = reply(404, {"error": f"no route {method} {path}"}, keep)
                writer.write(out)
                await writer.drain()
                if not keep:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        reset()
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def _server_call(port: int, path: str, method: str = "GET") -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


# ---------------------------------------------------------------- the clients
def build_messages(n: int) -> list[list[dict]]:
    """n distinct rating prompts, built by hominem's own template (rate_messages)."""
    from hominem.teachers.templates import rate_messages

    topics = ["a missed deadline", "a noisy neighbour", "learning to swim at 40", "a friend's bad news",
              "whether to take a pay cut", "a medication question", "a broken promise", "a first marathon"]
    out = []
    for i in range(n):
        inp = [{"role": "user", "content": f"Conversation {i}: I need advice about {topics[i % len(topics)]}. "
                                           f"What should I do first? (case {i})"}]
        out.append(rate_messages(inp, f"Candidate reply {i}: take a breath, list your options, pick one step."))
    return out


def run_floor(port: int, messages: list[list[dict]], concurrency: int) -> dict:
    """Reference, not a tool: `concurrency` bare asyncio keep-alive connections sending the same requests.

    What this machine, loopback and server reach with next to no client work: the floor under both tools.
    """
    async def worker(queue: list) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while queue:
            body = json.dumps({"model": "bench", "messages": queue.pop(), "temperature": 0.0, "max_tokens": 512,
                               "response_format": {"type": "json_object"}}).encode()
            writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                         b"application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            n = 0
            while (h := await reader.readline()) not in (b"\r\n", b""):
                if h.lower().startswith(b"content-length:"):
                    n = int(h.split(b":")[1])
            json.loads(await reader.readexactly(n))
        writer.close()

    async def go() -> None:
        queue = list(reversed(messages))
        await asyncio.gather(*(worker(queue) for _ in range(concurrency)))

    t0, c0 = time.perf_counter(), time.process_time()
    asyncio.run(go())
    return {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "ok": len(messages)}


def run_hominem(url: str, messages: list[list[dict]], concurrency: int, work: Path) -> dict:
    """The job through hominem's public API, with a fresh HOMINEM_HOME and request cache (no hit possible)."""
    os.environ["HOMINEM_HOME"] = str(work / "hominem-home")
    os.environ["HOMINEM_PROGRESS"] = "off"
    os.environ.setdefault("HOMINEM_BENCH_KEY", "dummy")
    from hominem.config import TeacherConfig
    from hominem.dims import load_rubric
    from hominem.teachers import TeacherRequest, make_teacher, runner
    from hominem.teachers.cache import RequestCache
    from hominem.teachers.parse import parse_rating

    t0, c0 = time.perf_counter(), time.process_time()
    cfg = TeacherConfig(backend="openai", base_url=url, model="bench", api_key_env="HOMINEM_BENCH_KEY",
                        concurrency=concurrency, max_tokens=512, max_retries=0)
    teacher = make_teacher(cfg)
    Path(os.environ["HOMINEM_HOME"]).mkdir(parents=True)
    cache = RequestCache(Path(os.environ["HOMINEM_HOME"]) / "teacher_cache.db")
    requests = [TeacherRequest.build(m, {"task": "rate", "index": i}, temperature=0.0, max_tokens=512,
                                     json_output=True) for i, m in enumerate(messages)]
    params = inspect.signature(runner.run_requests).parameters  # robust to the runner's evolving keywords
    kw = {k: v for k, v in {"concurrency": concurrency, "desc": "bench"}.items() if k in params}
    results, stats = runner.run_requests(teacher, requests, cache, **kw)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    names = load_rubric().names
    ok = sum(1 for r in results if isinstance(r, str) and parse_rating(r, names))
    return {"wall_s": wall, "cpu_s": cpu, "ok": ok,
            "stats": {k: v for k, v in stats.items() if not isinstance(v, (list, dict))},
            "runner": " ".join((runner.__doc__ or "").split("\n\n")[0].split())}


def run_distilabel(url: str, python: Path, messages: list[list[dict]], concurrency: int, replicas: int,
                   load_batch: int, work: Path) -> dict:
    """The job through distilabel, in its own interpreter (this file in --distilabel-job mode)."""
    data, result = work / "messages.json", work / "distilabel_result.json"
    data.write_text(json.dumps(messages))
    cmd = [str(python), __file__, "--distilabel-job", "--url", url, "--data", str(data), "--result", str(result),
           "--concurrency", str(concurrency), "--replicas", str(replicas), "--load-batch", str(load_batch),
           "--work", str(work / "distilabel")]
    t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=work)
    total, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 or not result.exists():
        raise SystemExit(f"distilabel job failed (exit {proc.returncode}); log tail:\n"
                         f"{(proc.stdout + proc.stderr)[-3000:]}")
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)  # its processes, imports included
    return {**json.loads(result.read_text()), "process_wall_s": total, "process_cpu_s": cpu}


def _rusage_s() -> float:
    """CPU seconds of this process and its reaped children (distilabel's step processes)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def distilabel_job(a: argparse.Namespace) -> None:
    """Runs inside distilabel's venv: the same requests through a distilabel Pipeline, no cache."""
    import distilabel
    from distilabel.models.llms import OpenAILLM
    from distilabel.pipeline import Pipeline
    from distilabel.steps import LoadDataFromDicts, StepResources
    from distilabel.steps.tasks import ChatGeneration

    messages = json.loads(Path(a.data).read_text())
    batch = max(1, int(a.concurrency) // int(a.replicas))
    t0, r0 = time.perf_counter(), _rusage_s()
    with Pipeline(name="hominem-teacher-throughput", cache_dir=a.work) as pipeline:
        load = LoadDataFromDicts(data=[{"messages": m} for m in messages], batch_size=int(a.load_batch))
        llm = OpenAILLM(model="bench", base_url=a.url, api_key="dummy", max_retries=0, timeout=60,
                        generation_kwargs={"max_new_tokens": 512, "temperature": 0.0,
                                           "response_format": {"type": "json_object"}})
        gen = ChatGeneration(llm=llm, input_batch_size=batch, use_cache=False,
                             resources=StepResources(replicas=int(a.replicas)))
        load >> gen
    distiset = pipeline.run(use_cache=False)
    wall, cpu = time.perf_counter() - t0, _rusage_s() - r0
    rows = [r for name in distiset for r in distiset[name]["train"]]
    ok = 0
    for r in rows:
        try:
            ok += isinstance(json.loads(r.get("generation") or ""), dict)
        except ValueError:
            pass
    Path(a.result).write_text(json.dumps({
        "wall_s": wall, "cpu_s": cpu, "ok": ok, "rows": len(rows), "input_batch_size": batch,
        "load_batch_size": int(a.load_batch), "replicas": int(a.replicas), "version": distilabel.__version__}))


# ---------------------------------------------------------------- report
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--latency", type=float, default=0.1, help="seconds the server sleeps per request")
    p.add_argument("--concurrency", type=int, default=16, help="requests in flight, the same for both tools")
    p.add_argument("--replicas", type=int, default=1, help="distilabel step replicas (input_batch_size = "
                   "concurrency / replicas, so the most in flight stays the same)")
    p.add_argument("--load-batch", type=int, default=50, help="distilabel LoadDataFromDicts batch_size "
                   "(rows per batch its generator emits; distilabel's default 50)")
    p.add_argument("--distilabel-python", default=str(DEFAULT_VENV / "bin" / "python"))
    p.add_argument("--only", choices=["hominem", "distilabel"], help="run one tool only")
    p.add_argument("--no-floor", action="store_true", help="skip the bare-asyncio reference client")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--distilabel-job", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("--url", "--data", "--result", "--work"):
        p.add_argument(hidden, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.serve:
        return serve(a.latency)
    if a.distilabel_job:
        return distilabel_job(a)

    dpy = Path(a.distilabel_python)
    if a.only != "hominem" and not dpy.exists():
        raise SystemExit(f"no distilabel interpreter at {dpy}: run `bash benchmarks/setup_distilabel.sh` first")
    tools = [t for t in ("floor", "hominem", "distilabel")
             if not (a.only and t != a.only) and not (t == "floor" and a.no_floor)]
    server = subprocess.Popen([sys.executable, __file__, "--serve", "--latency", str(a.latency)],
                              stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        url = f"http://127.0.0.1:{port}/v1"
        messages = build_messages(a.requests)
        out = {"requests": a.requests, "latency_s": a.latency, "concurrency": a.concurrency,
               "ideal_s": a.requests * a.latency / a.concurrency, "cpus": os.cpu_count(),
               "load_before": os.getloadavg()[0], "tools": {}}
        with tempfile.TemporaryDirectory(prefix="hominem-bench-") as tmp:
            for tool in tools:
                _server_call(port, "/reset", "POST")
                if tool == "floor":
                    res = run_floor(port, messages, a.concurrency)
                elif tool == "hominem":
                    res = run_hominem(url, messages, a.concurrency, Path(tmp))
                else:
                    res = run_distilabel(url, dpy, messages, a.concurrency, a.replicas, a.load_batch, Path(tmp))
                res["server"] = _server_call(port, "/stats")
                out["tools"][tool] = res
        out["load_after"] = os.getloadavg()[0]
    finally:
        server.terminate()
        server.wait(5)
    report(out)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))


def report(out: dict) -> None:
    n, ideal, tools = out["requests"], out["ideal_s"], out["tools"]
    print(f"teacher throughput: {n} rating requests, {out['latency_s'] * 1000:.0f} ms server latency, concurrency "
          f"{out['concurrency']} for every client; loopback asyncio server on 127.0.0.1 (own process); "
          f"{out['cpus']} CPUs, load average {out['load_before']:.1f} -> {out['load_after']:.1f}")
    print(f"ideal: {n} x {out['latency_s']:.3f} s / {out['concurrency']} = {ideal:.3f} s ({n / ideal:.1f} req/s)")
    print(f"{'client':<11}{'wall_s':>8}{'req/s':>8}{'vs ideal':>10}{'cpu_s':>7}{'served':>8}{'max_infl':>9}"
          f"{'span_s':>8}{'span req/s':>11}{'ok':>5}  request digest")
    for tool, r in tools.items():
        s = r["server"]
        print(f"{tool:<11}{r['wall_s']:>8.3f}{n / r['wall_s']:>8.1f}{(r['wall_s'] / ideal - 1) * 100:>+9.1f}%"
              f"{r['cpu_s']:>7.2f}{s['served']:>8}{s['max_inflight']:>9}{s['span_s']:>8.3f}"
              f"{s['served'] / max(s['span_s'], 1e-9):>11.1f}{r['ok']:>5}  {s['digest']}")
    print("  wall_s/cpu_s: the job as its user waits for it (imports before it excluded); span_s: server's first "
          "request in to last answer out; floor: bare asyncio sockets, a reference, not a tool")
    if "distilabel" in tools:
        d = tools["distilabel"]
        print(f"distilabel {d['version']}: ChatGeneration(OpenAILLM), input_batch_size={d['input_batch_size']}, "
              f"replicas={d['replicas']}, LoadDataFromDicts batch_size={d['load_batch_size']}, use_cache=False; "
              f"its process incl. interpreter start and imports: {d['process_wall_s']:.3f} s wall, "
              f"{d['process_cpu_s']:.2f} s cpu")
    if "hominem" in tools:
        h = tools["hominem"]
        print(f"hominem runner: {h['runner']}")
        print(f"hominem stats: {h['stats']}")
    if "hominem" in tools and "distilabel" in tools:
        h, d = tools["hominem"], tools["distilabel"]
        ratio = d["wall_s"] / h["wall_s"]
        span_ratio = d["server"]["span_s"] / max(h["server"]["span_s"], 1e-9)
        dist = h["wall_s"] / ideal - 1
        same = (h["server"]["digest"] == d["server"]["digest"] and h["server"]["served"] == d["server"]["served"] == n
                and h["server"]["params"] == d["server"]["params"] and h["ok"] == d["ok"] == n)
        print(f"throughput ratio hominem/distilabel: {ratio:.2f}x (server span only: {span_ratio:.2f}x)")
        print(f"hominem distance from ideal: {dist * 100:+.1f}%"
              + (f" (floor on this machine: {(tools['floor']['wall_s'] / ideal - 1) * 100:+.1f}%)" if "floor" in tools else ""))
        print(f"target hominem >= 2x distilabel: {'MET' if ratio >= 2 else 'NOT MET'}; "
              f"target hominem within 20% of ideal: {'MET' if dist <= 0.2 else 'NOT MET'}")
        print(f"same work: {'yes' if same else 'NO'} (served {h['server']['served']}/{d['server']['served']}, "
              f"valid answers {h['ok']}/{d['ok']}, distinct requests {h['server']['distinct']}/"
              f"{d['server']['distinct']}, digests {h['server']['digest']}/{d['server']['digest']}, "
              f"params {h['server']['params']} / {d['server']['params']})")


if __name__ == "__main__":
    main()
