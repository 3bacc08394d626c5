"""Anthropic Messages API backend against a real loopback server that speaks the Messages API."""

import json
import logging
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hominem.config import TeacherConfig, load_config
from hominem.dims import DIMENSIONS
from hominem.teachers import TeacherRequest, make_teacher
from hominem.teachers.anthropic_http import AnthropicTeacher
from hominem.teachers.cache import RequestCache
from hominem.teachers.openai_http import TeacherAuthError, TeacherHTTPError
from hominem.teachers.parse import parse_rating
from hominem.teachers.runner import run_requests

ROOT = Path(__file__).resolve().parents[2]
KEY_ENV, SECRET = "HOMINEM_TEST_ANTHROPIC_KEY", "sk-ant-test-SECRET-0042"
RATING = {"scores": {d: 4 for d in DIMENSIONS}, "overall": 8, "rationale": "Warm and accurate."}


class MessagesServer:
    """Loopback server for POST /v1/messages with scripted faults: an int status, "prefill" (400 for a
    prefilled request), "echo401" (401 whose body echoes the x-api-key), or a (status, headers) pair."""

    def __init__(self, faults=()):
        self.faults, self.seen, outer = list(faults), [], self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, code, payload, headers=()):
                data = json.dumps(payload).encode()
                self.send_response(code)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.seen.append({"path": self.path, "headers": dict(self.headers), "body": body, "t": time.monotonic()})
                fault = outer.faults.pop(0) if outer.faults else None
                if self.path != "/v1/messages":
                    return self._send(404, {"type": "error", "error": {"type": "not_found_error"}})
                prefilled = body["messages"][-1]["role"] == "assistant"
                if fault == "prefill" and prefilled:
                    return self._send(400, {"type": "error", "error": {"type": "invalid_request_error", "message":
                                      "This model does not support assistant message prefill. The conversation "
                                      "must end with a user message."}})
                if fault == "echo401":
                    return self._send(401, {"type": "error", "error": {"type": "authentication_error",
                                      "message": f"invalid x-api-key {self.headers.get('x-api-key')}"}})
                if isinstance(fault, tuple):
                    return self._send(fault[0], {"type": "error", "error": {"type": "x"}}, fault[1])
                if isinstance(fault, int):
                    kind = "overloaded_error" if fault == 529 else "api_error"
                    return self._send(fault, {"type": "error", "error": {"type": kind, "message": "busy"}})
                if "careful rater" in body.get("system", ""):
                    text = json.dumps(RATING)
                    text = text[1:] if prefilled else text  # a real model continues after the prefilled "{"
                else:
                    text = f"Reply number {len(outer.seen)}: that sounds hard; which option fits you?"
                self._send(200, {"id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
                                 "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                                 "usage": {"input_tokens": 120, "output_tokens": 30}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _rate_request(text="That sounds hard.", temperature=0.0):
    msgs = [{"role": "system", "content": "You are a careful rater. Rubric ..."},
            {"role": "user", "content": f"Conversation:\nhi\n\nAssistant reply to rate:\n{text}"}]
    return TeacherRequest.build(msgs, {"task": "rate", "prompt_id": "p", "index": 0, "candidate": text},
                                json_output=True, temperature=temperature, max_tokens=300)


def _teacher(url, **kw):
    return AnthropicTeacher(url, "claude-test", KEY_ENV, timeout_s=5, max_retries=kw.pop("max_retries", 3),
                            backoff_s=0.01, **kw)


def test_request_shape_headers_prefill_and_answer(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    with MessagesServer() as server:
        text = _teacher(server.url).complete(_rate_request(temperature=1.7))
    assert parse_rating(text, DIMENSIONS) == ({d: 4.0 for d in DIMENSIONS}, 8.0, "Warm and accurate.")
    (req,) = server.seen
    h = {k.lower(): v for k, v in req["headers"].items()}
    assert req["path"] == "/v1/messages" and h["x-api-key"] == SECRET and h["anthropic-version"] == "2023-06-01"
    assert "authorization" not in h
    body = req["body"]
    assert body["model"] == "claude-test" and body["max_tokens"] == 300 and body["temperature"] == 1.0  # clipped
    assert body["system"].startswith("You are a careful rater.") and "one JSON object" in body["system"]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant"]  # system moved out of the list
    assert body["messages"][-1]["content"] == "{"


def test_plain_requests_are_not_prefilled_and_turns_are_merged(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    req = TeacherRequest.build([{"role": "system", "content": "S1"}, {"role": "system", "content": "S2"},
                                {"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
                               {"task": "sample"}, temperature=0.5, max_tokens=50)
    with MessagesServer() as server:
        text = _teacher(server.url).complete(req)
    assert text.startswith("Reply number 1")
    body = server.seen[0]["body"]
    assert body["system"] == "S1\n\nS2" and body["messages"] == [{"role": "user", "content": "a\n\nb"}]
    assert body["temperature"] == 0.5


def test_retries_429_and_529_honouring_retry_after(monkeypatch, tmp_path):
    monkeypatch.setenv(KEY_ENV, SECRET)
    faults = [(429, [("retry-after", "0.3")]), 529, (500, [("retry-after-ms", "200")])]
    with MessagesServer(faults) as server:
        results, stats = run_requests(_teacher(server.url), [_rate_request()], RequestCache(tmp_path / "c.db"))
    assert parse_rating(results[0], DIMENSIONS)[1] == 8.0
    t = [s["t"] for s in server.seen]
    assert len(t) == 4 and t[1] - t[0] >= 0.29 and t[3] - t[2] >= 0.19  # the server's wait was honoured
    assert stats["retries"] == 3 and stats["retry_reasons"] == {"HTTP 429": 1, "HTTP 529": 1, "HTTP 500": 1}
    assert (stats["prompt_tokens"], stats["completion_tokens"]) == (120, 30)  # the reported usage


def test_x_should_retry_overrides_the_status_rule(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    with MessagesServer([(503, [("x-should-retry", "false")])]) as server:
        with pytest.raises(TeacherHTTPError, match="HTTP 503"):
            _teacher(server.url).complete(_rate_request())
    assert len(server.seen) == 1
    with MessagesServer([(400, [("x-should-retry", "true")])]) as server:
        assert parse_rating(_teacher(server.url).complete(_rate_request()), DIMENSIONS)[1] == 8.0
    assert len(server.seen) == 2


def test_a_model_that_rejects_prefill_is_asked_again_without_it(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    with MessagesServer(["prefill"]) as server:
        t = _teacher(server.url)
        first, second = t.complete(_rate_request("a")), t.complete(_rate_request("b"))
    assert parse_rating(first, DIMENSIONS)[1] == parse_rating(second, DIMENSIONS)[1] == 8.0
    roles = [[m["role"] for m in s["body"]["messages"]] for s in server.seen]
    assert roles == [["user", "assistant"], ["user"], ["user"]] and t.prefill is False


def test_client_errors_are_final_and_the_key_never_leaks(monkeypatch, tmp_path, caplog, capfd):
    monkeypatch.setenv(KEY_ENV, SECRET)
    caplog.set_level(logging.DEBUG)
    with MessagesServer([400]) as server:
        with pytest.raises(TeacherHTTPError, match="HTTP 400"):
            _teacher(server.url).complete(_rate_request())
        assert len(server.seen) == 1
    reqs = [_rate_request(f"text {i}") for i in range(4)]
    with MessagesServer(["echo401"]) as server:
        results, stats = run_requests(_teacher(server.url), reqs, RequestCache(tmp_path / "c.db"), concurrency=1)
    assert all(isinstance(r, BaseException) for r in results) and stats["aborted"]
    assert isinstance(results[0], TeacherAuthError) and "[redacted]" in str(results[0])
    assert len(server.seen) == 1  # the run stopped sending after the 401
    assert SECRET not in "".join(f"{type(r).__name__}: {r}" for r in results) + json.dumps(stats, default=str)
    assert SECRET not in caplog.text + "".join(capfd.readouterr())
    assert SECRET.encode() not in (tmp_path / "c.db").read_bytes()


def test_missing_key_is_a_clear_final_error(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with MessagesServer() as server:
        with pytest.raises(TeacherAuthError, match=KEY_ENV):
            _teacher(server.url, max_retries=0).complete(_rate_request())
        assert server.seen == []  # nothing was sent


def test_defaults_never_point_at_openai():
    t = make_teacher(TeacherConfig(backend="anthropic", model="claude-x"))
    assert (t.base_url, t.api_key_env, t.name) == ("https://api.anthropic.com", "ANTHROPIC_API_KEY",
                                                   "anthropic:https://api.anthropic.com:claude-x")
    t = make_teacher(TeacherConfig(backend="anthropic", base_url="http://127.0.0.1:9/", api_key_env="MY_KEY"))
    assert (t.base_url, t.api_key_env) == ("http://127.0.0.1:9", "MY_KEY")
    cfg = load_config(ROOT / "configs" / "anthropic.yaml")
    assert cfg.teacher.backend == "anthropic" and cfg.teacher.api_key_env == "ANTHROPIC_API_KEY"


def test_rate_stage_end_to_end_through_the_pipeline(monkeypatch):
    """configs/anthropic.yaml against the loopback server: candidates, ratings and the dataset stages."""
    from hominem.pipeline import run_pipeline
    from hominem.store import open_store

    monkeypatch.setenv(KEY_ENV, SECRET)
    with MessagesServer([529, (429, [("retry-after", "0")])]) as server:
        cfg = load_config(ROOT / "configs" / "anthropic.yaml",
                          [f"teacher.base_url={server.url}", f"teacher.api_key_env={KEY_ENV}", "prompts.limit_per_split=1",
                           "candidates.n_per_prompt=3", "teacher.concurrency=3", "teacher.backoff_s=0.01"])
        store = open_store(cfg.store)
        refs, made = run_pipeline(cfg, store, until="dataset")
    assert made == ["prompts", "candidates", "ratings", "dataset"]
    metrics = store.registry.get(refs["dataset"].id).metrics
    assert metrics["records"] == 2 and metrics["candidates"] == 6 and metrics["quarantined"] == 0
    assert len(server.seen) == 12 + 2  # 6 samples + 6 ratings, plus two retried faults
    rated = [s["body"] for s in server.seen if "careful rater" in s["body"].get("system", "")]
    assert len(rated) >= 6 and all(b["messages"][-1] == {"role": "assistant", "content": "{"} for b in rated)
    home = Path(os.environ["HOMINEM_HOME"])
    for p in (p for p in home.rglob("*") if p.is_file()):
        assert SECRET.encode() not in p.read_bytes(), f"the API key leaked into {p}"
