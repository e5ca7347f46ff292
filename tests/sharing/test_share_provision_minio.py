"""The MinIO back end of provisioning, through the real MinIO SDK admin client, against an HTTP server on
127.0.0.1 that records the admin API calls (no MinIO server can run here; SeaweedFS covers enforcement)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from pingan.core.settings import S3Settings
from pingan.core.storage import Store
from pingan.sharing.agreements import load_agreements
from pingan.sharing.provision import _provision_minio
from pingan.sharing.recipients import s3_credentials


class Recorder(BaseHTTPRequestHandler):
    calls: list[tuple[str, str, dict, bytes]] = []

    def _record(self) -> None:
        url = urlparse(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Recorder.calls.append((self.command, url.path.rsplit("/", 1)[-1], parse_qs(url.query), body))
        status = 204 if url.path.endswith("/attach") else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = do_POST = do_DELETE = _record

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def admin_api():
    Recorder.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _Settings:
    def __init__(self, endpoint: str):
        self.s3 = S3Settings(endpoint, "hub-admin", "hub-admin-secret")


def test_minio_users_and_policies_follow_the_agreements(admin_api):
    settings = _Settings(admin_api)
    shares = Store("s3://pingan-shares", settings.s3)
    agreements = load_agreements()
    creds = {p: s3_credentials(b"k" * 32, a) for p, a in agreements.items() if p != "pinghu"}
    result = _provision_minio(settings, shares, creds, {"pinghu": agreements["pinghu"]}, b"k" * 32)
    assert result.granted == ["jiashan", "jinshan", "wujiang"] and result.removed == ["pinghu"]

    by_command = {}
    for method, command, query, body in Recorder.calls:
        by_command.setdefault(command, []).append((method, query, body))
    policies = {q["name"][0]: json.loads(b) for _, q, b in by_command["add-canned-policy"]}
    assert set(policies) == {"pingan-share-wujiang", "pingan-share-jiashan", "pingan-share-jinshan"}
    resources = [r for s in policies["pingan-share-wujiang"]["Statement"] for r in s["Resource"]]
    assert resources == ["arn:aws:s3:::pingan-shares/share/wujiang/*", "arn:aws:s3:::pingan-shares"]
    assert sorted(q["accessKey"][0] for _, q, _ in by_command["add-user"]) == [
        "pingan-share-jiashan", "pingan-share-jinshan", "pingan-share-wujiang"
    ]  # fmt: skip
    assert all(
        creds["wujiang"].secret_key.encode() not in b for _, _, b in by_command["add-user"]
    )  # encrypted
    assert len(by_command["attach"]) == 3
    assert [q["accessKey"][0] for _, q, _ in by_command["remove-user"]] == ["pingan-share-pinghu"]
    assert [q["name"][0] for _, q, _ in by_command["remove-canned-policy"]] == ["pingan-share-pinghu"]
