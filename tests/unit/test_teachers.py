"""Teacher backends: replay, fake, and the OpenAI-compatible client against a real loopback server."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hominem.config import TeacherConfig
from hominem.data.dataset import bundled_seed_path, read_seed_records
from hominem.dims import DIMENSIONS
from hominem.teachers import TeacherRequest, make_teacher
from hominem.teachers.cache import RequestCache, request_key
from hominem.teachers.openai_http import OpenAITeacher, TeacherHTTPError
from hominem.teachers.parse import parse_rating
from hominem.teachers.runner import run_requests


def _rate_request(pid, text):
    return TeacherRequest.build([{"role": "user", "content": "rate"}],
                                {"task": "rate", "prompt_id": pid, "index": 0, "candidate": text}, json_output=True)


def test_replay_serves_recorded_candidates_and_ratings():
    rec = read_seed_records(bundled_seed_path())[0]
    teacher = make_teacher(TeacherConfig(backend="replay"))
    pid = rec["metadata"]["prompt_id"]
    sample = TeacherRequest.build([{"role": "user", "content": "x"}], {"task": "sample", "prompt_id": pid, "index": 1})
    assert teacher.complete(sample) == rec["candidate_outputs"][1]
    dims, overall, rationale = parse_rating(teacher.complete(_rate_request(pid, rec["candidate_outputs"][2])),
                                            DIMENSIONS)
    assert dims == rec["reward_vectors"][2] and overall == rec["scalar_rewards"][2]
    assert rationale == rec["rationales"][2]
    with pytest.raises(KeyError):
        teacher.complete(_rate_request(pid, "a response nobody recorded"))


def test_fake_is_deterministic():
    t1, t2 = make_teacher(TeacherConfig(backend="fake")), make_teacher(TeacherConfig(backend="fake"))
    req = _rate_request("p1", "One option is to check the evidence.")
    assert t1.complete(req) == t2.complete(req)


class _Server:
    """A real HTTP server on loopback speaking OpenAI chat completions, with scripted faults."""

    def __init__(self, faults):
        self.faults = list(faults)
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"body": body, "auth": self.headers.get("Authorization")})
                fault = outer.faults.pop(0) if outer.faults else None
                if fault == 429:
                    self.send_response(429)
                    self.send_header("Retry-After", "0.05")
                    self.end_headers()
                    return
                if fault in (500, 400):
                    self.send_response(fault)
                    self.end_headers()
                    self.wfile.write(b"boom")
                    return
                content = json.dumps({"scores": {d: 4 for d in DIMENSIONS}, "overall": 8, "rationale": "Good."})
                payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def test_openai_backend_retries_429_and_500_then_succeeds(monkeypatch):
    monkeypatch.setenv("TEST_TEACHER_KEY", "sk-secret-123")
    server = _Server([429, 500])
    try:
        t = OpenAITeacher(server.url, "m", "TEST_TEACHER_KEY", timeout_s=5, max_retries=3, backoff_s=0.01)
        text = t.complete(_rate_request("p", "x"))
        assert parse_rating(text, DIMENSIONS)[1] == 8
        assert len(server.requests) == 3
        assert server.requests[-1]["auth"] == "Bearer sk-secret-123"
        assert server.requests[-1]["body"]["response_format"] == {"type": "json_object"}
    finally:
        server.close()


def test_openai_backend_does_not_retry_client_errors():
    server = _Server([400])
    try:
        t = OpenAITeacher(server.url, "m", None, timeout_s=5, max_retries=3, backoff_s=0.01)
        with pytest.raises(TeacherHTTPError, match="HTTP 400"):
            t.complete(_rate_request("p", "x"))
        assert len(server.requests) == 1
    finally:
        server.close()


def test_cache_serves_repeats_without_calls_and_never_stores_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_TEACHER_KEY", "sk-secret-456")
    server = _Server([])
    try:
        t = OpenAITeacher(server.url, "m", "TEST_TEACHER_KEY", timeout_s=5, max_retries=1)
        cache = RequestCache(tmp_path / "cache.db")
        reqs = [_rate_request("p", f"text {i}") for i in range(5)]
        out1, s1 = run_requests(t, reqs, cache, concurrency=3)
        out2, s2 = run_requests(t, reqs, cache, concurrency=3)
        assert s1["calls"] == 5 and s2["calls"] == 0 and out1 == out2 and len(server.requests) == 5
        assert request_key(t.name, reqs[0]) != request_key(t.name, reqs[1])
        assert b"sk-secret-456" not in (tmp_path / "cache.db").read_bytes()
        assert "sk-secret-456" not in repr(t.__dict__)
    finally:
        server.close()
