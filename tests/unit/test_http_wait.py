"""servers.http_wait: the one wait-for-200 loop the server scripts and the server tests share."""

from __future__ import annotations

import http.server
import threading

import pytest

from conftest import free_port
from servers.http_wait import ServerExited, wait_http_ok


class _Status(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/ok" else 503)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def base():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Status)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_returns_once_the_url_answers_200(base):
    wait_http_ok(f"{base}/ok", timeout=10, poll=lambda: None)


def test_timeout_names_the_url_the_seconds_and_the_last_answer(base):
    with pytest.raises(TimeoutError) as e:
        wait_http_ok(f"{base}/starting", timeout=0.3, interval=0.1)
    msg = str(e.value)
    assert f"{base}/starting did not answer 200 within 0.3 s" in msg
    assert "503" in msg and "\n" not in msg


def test_nothing_listening_is_a_timeout_too():
    url = f"http://127.0.0.1:{free_port()}/health"
    with pytest.raises(TimeoutError, match="did not answer 200 within 0.2 s"):
        wait_http_ok(url, timeout=0.2, interval=0.1)


@pytest.mark.parametrize("code, detail", [(3, "exit code 3"), ("gone", "exit code unknown")])
def test_a_dead_process_stops_the_wait_with_its_exit_code(code, detail):
    url = f"http://127.0.0.1:{free_port()}/health"
    with pytest.raises(ServerExited) as e:
        wait_http_ok(url, timeout=30, poll=lambda: code)
    assert e.value.returncode == code
    assert detail in str(e.value) and url in str(e.value) and "\n" not in str(e.value)
