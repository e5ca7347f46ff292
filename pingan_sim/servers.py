"""The simulated HTTP sources on 127.0.0.1: Qingpu's fire REST API and the Pinghu–Jinshan CSV endpoint.

Both serve the files `simulate()` wrote under $PINGAN_HOME/sim, so what a connector pulls is exactly
what the defect ledger describes. `Faults` makes the failures connectors must survive happen on cue:
server errors, responses slower than the client's timeout, and a page served twice.

    with SourceServers(home, token) as servers:
        requests.get(servers.fire_url + "/api/v1/fire/alarms", params={...},
                     headers={"Authorization": f"Bearer {token}"})
"""

from __future__ import annotations

import base64
import hmac
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np

from pingan_sim.fire import ALARMS_PATH, FIRE_DIR, INSPECTIONS_PATH
from pingan_sim.joint_operations import file_for

JOINT_OPS_PATH = "/api/v1/joint-operations.csv"
SHANGHAI = timezone(timedelta(hours=8))
MAX_PAGE_SIZE = 5000


@dataclass
class Faults:
    """Deterministic failures, counted over all requests to both servers in arrival order.

    fail_first_n    the first N requests answer HTTP 500
    slow_first_n    the first N requests wait `slow_seconds` before answering (a client with a shorter
                    timeout gives up; the answer itself is then normal)
    repeat_page     once per paginated endpoint, the first request for a later page (page >= 2, or any
                    cursor) gets the previous response again, byte for byte: the same `page` number, or
                    the same `next_cursor` as the cursor just sent. A correct client notices it made no
                    progress, asks again, and never counts those records twice.
    requests_served requests received so far (including failed ones); `log` has (path?query, status)
    """

    fail_first_n: int = 0
    slow_first_n: int = 0
    slow_seconds: float = 5.0
    repeat_page: bool = False
    requests_served: int = field(default=0, init=False)
    log: list[tuple[str, int]] = field(default_factory=list, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)
    _repeated: set[str] = field(default_factory=set, init=False, repr=False)
    _previous: dict[str, bytes] = field(default_factory=dict, init=False, repr=False)

    def arrive(self) -> int:
        with self._lock:
            self.requests_served += 1
            return self.requests_served

    def served(self, target: str, status: int) -> None:
        with self._lock:
            self.log.append((target, status))

    def replay(self, endpoint: str, later_page: bool) -> bytes | None:
        """The previous response to replay instead of this one, if the repeat is due now."""
        with self._lock:
            if (
                self.repeat_page
                and later_page
                and endpoint not in self._repeated
                and endpoint in self._previous
            ):
                self._repeated.add(endpoint)
                return self._previous[endpoint]
            return None

    def remember(self, endpoint: str, body: bytes) -> None:
        with self._lock:
            self._previous[endpoint] = body


SERVER_FAULTS = "server_faults.json"


def _empty_page(path: str, page: int, total: int) -> bytes:
    """A later page that is valid JSON with no items and no next link, although `total` says more exist."""
    if path == INSPECTIONS_PATH:
        body = {"data": [], "page": page, "page_size": 0, "total_pages": page, "total": total}
    else:
        body = {"items": [], "next_cursor": None, "total": total}
    return json.dumps(body).encode()


class BadRequest(ValueError):
    pass


def _instant(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    text = value.strip().replace(" ", "+")  # an unencoded '+' in a query string arrives as a space
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name}: not an ISO-8601 timestamp: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=SHANGHAI)  # naive means Shanghai time


def _int(params: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    try:
        value = int(params.get(name) or default)
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise BadRequest(f"{name} must be between {lo} and {hi}")
    return value


class FireData:
    """Records of the fire API, read from the day files (one per day of updatedAt) without holding them.

    A window is located by the updatedAt of every line (an index kept per file, 8 bytes a record); only
    the lines of the page asked for are parsed, so an initial pull over two years of alarms stays cheap.
    """

    def __init__(self, home: Path, cache_files: int = 8):
        self.dir = home / FIRE_DIR
        self.times: dict[Path, np.ndarray] = {}  # epoch seconds of each line, in updatedAt order
        self.lines: OrderedDict[Path, list[bytes]] = OrderedDict()
        self.cache_files = cache_files
        self.lock = threading.Lock()

    def _read(self, path: Path) -> tuple[np.ndarray, list[bytes]]:
        with self.lock:
            if path in self.lines:
                self.lines.move_to_end(path)
                return self.times[path], self.lines[path]
        raw = path.read_bytes().splitlines()
        stamps = np.array(
            [
                datetime.fromisoformat(line.rsplit(b'"updatedAt":"', 1)[1][:25].decode()).timestamp()
                for line in raw
            ],
            dtype=np.int64,
        )
        order = np.argsort(stamps, kind="stable")  # written in order; stay correct if a file is not
        times, lines = stamps[order], [raw[i] for i in order.tolist()]
        with self.lock:
            self.times[path], self.lines[path] = times, lines
            while len(self.lines) > self.cache_files:
                self.lines.popitem(last=False)
        return times, lines

    def _spans(
        self, kind: str, since: datetime | None, until: datetime | None
    ) -> list[tuple[Path, int, int]]:
        """(file, first, end) line ranges with since < updatedAt <= until, in order."""
        first = since.astimezone(SHANGHAI).date() if since else date.min
        last = until.astimezone(SHANGHAI).date() if until else date.max
        lo_t = since.timestamp() if since else -np.inf
        hi_t = until.timestamp() if until else np.inf
        spans = []
        for path in sorted(self.dir.glob(f"{kind}_*.jsonl")):
            if first <= datetime.strptime(path.stem.rsplit("_", 1)[1], "%Y%m%d").date() <= last:
                times = self.times.get(path)
                if times is None:
                    times = self._read(path)[0]
                lo, hi = np.searchsorted(times, lo_t, "right"), np.searchsorted(times, hi_t, "right")
                if hi > lo:
                    spans.append((path, int(lo), int(hi)))
        return spans

    def count(self, kind: str, since: datetime | None, until: datetime | None) -> int:
        return sum(hi - lo for _, lo, hi in self._spans(kind, since, until))

    def slice(
        self, kind: str, since: datetime | None, until: datetime | None, start: int, stop: int
    ) -> list[dict]:
        """Records start..stop (0-based, end exclusive) of the window."""
        out, seen = [], 0
        for path, lo, hi in self._spans(kind, since, until):
            n = hi - lo
            if seen + n > start and seen < stop:
                a, b = lo + max(start - seen, 0), lo + min(stop - seen, n)
                out += [json.loads(line) for line in self._read(path)[1][a:b]]
            seen += n
            if seen >= stop:
                break
        return out


def _cursor(offset: int, since: str, until: str) -> str:
    raw = json.dumps({"o": offset, "s": since, "u": until}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _offset(cursor: str, since: str, until: str) -> int:
    try:
        state = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        offset = int(state["o"])
    except (ValueError, KeyError, TypeError):
        raise BadRequest("invalid cursor") from None
    if (state.get("s"), state.get("u")) != (since, until):
        raise BadRequest("cursor belongs to a different since/until window")
    return offset


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format, *args):  # quiet: tests start many servers
        pass

    def do_GET(self):  # name fixed by http.server
        faults = self.server.faults
        n = faults.arrive()
        if n <= faults.slow_first_n:
            self.server.stopping.wait(faults.slow_seconds)
        if n <= faults.fail_first_n:
            return self.send(500, {"error": "internal server error (injected)"})
        url = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            self.server.route(self, url.path, params)
        except BadRequest as exc:
            self.send(400, {"error": str(exc)})
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
            pass
        except Exception as exc:  # a simulator bug must surface as a 500, not a hung connection
            self.send(500, {"error": f"{type(exc).__name__}: {exc}"})

    def authorised(self, token: str | None) -> bool:
        if token is None:
            return True
        header = self.headers.get("Authorization", "")
        return header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), token.encode())

    def send(self, status: int, payload, content_type: str = "application/json; charset=utf-8") -> None:
        body = (
            payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode("utf-8")
        )
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Bearer realm="pingan-sim"')
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            return
        finally:
            self.server.faults.served(self.path, status)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, router, faults: Faults, stopping: threading.Event):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.route = router
        self.faults = faults
        self.stopping = stopping

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class SourceServers:
    """Start both simulated HTTP sources on ephemeral loopback ports; stop them on exit.

    The fire API requires `Authorization: Bearer <token>` (401 otherwise). The joint-operations endpoint
    is open, as docs/source_systems.md describes it, unless `joint_ops_token` is given.
    """

    def __init__(
        self, home: Path, token: str, faults: Faults | None = None, *, joint_ops_token: str | None = None
    ):
        self.home = Path(home)
        self.token = token
        self.joint_ops_token = joint_ops_token
        self.faults = faults or Faults()
        self.fire = FireData(self.home)
        self._stopping = threading.Event()
        self._servers: list[_Server] = []
        self.fire_url = self.joint_ops_url = ""

    # --- lifecycle ---------------------------------------------------------------------------------------
    def __enter__(self) -> SourceServers:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> SourceServers:
        fire = _Server(self._fire_route, self.faults, self._stopping)
        joint = _Server(self._joint_route, self.faults, self._stopping)
        self._servers = [fire, joint]
        for server in self._servers:
            # a short poll interval: stopping (tests start and stop servers often) takes one interval
            threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"sim-http-{server.url}",
                daemon=True,
            ).start()
        self.fire_url, self.joint_ops_url = fire.url, joint.url
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping on a slow fault
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers = []

    # --- the fire API ------------------------------------------------------------------------------------
    def _fire_route(self, handler: _Handler, path: str, params: dict[str, str]) -> None:
        if path not in (INSPECTIONS_PATH, ALARMS_PATH):
            return handler.send(404, {"error": f"no such endpoint {path}"})
        if not handler.authorised(self.token):
            return handler.send(401, {"error": "missing or invalid bearer token"})
        since_text, until_text = params.get("since") or "", params.get("until") or ""
        since, until = _instant(since_text, "since"), _instant(until_text, "until")
        if path == INSPECTIONS_PATH:
            page = _int(params, "page", 1, 1, 10**9)
            size = _int(params, "page_size", 500, 1, MAX_PAGE_SIZE)
            later = page > 1
        else:
            limit = _int(params, "limit", 1000, 1, MAX_PAGE_SIZE)
            cursor = params.get("cursor") or ""
            offset = _offset(cursor, since_text, until_text) if cursor else 0
            later = bool(cursor)
        replay = self.faults.replay(path, later)
        if replay is not None:
            return handler.send(200, replay)
        kind = "inspections" if path == INSPECTIONS_PATH else "alarms"
        total = self.fire.count(kind, since, until)
        if later and path in self.empty_later_pages():
            return handler.send(200, _empty_page(path, page if path == INSPECTIONS_PATH else 0, total))
        if path == INSPECTIONS_PATH:
            body = {
                "data": self.fire.slice(kind, since, until, (page - 1) * size, page * size),
                "page": page,
                "page_size": size,
                "total_pages": -(-total // size),
                "total": total,
            }
        else:
            end = offset + limit
            body = {
                "items": self.fire.slice(kind, since, until, offset, end),
                "next_cursor": _cursor(end, since_text, until_text) if end < total else None,
                "total": total,
            }
        raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.faults.remember(path, raw)
        handler.send(200, raw)

    def empty_later_pages(self) -> set[str]:
        """Endpoints whose pages after the first answer with no items and no next link (a delivery fault,
        `empty_second_page`, switched on by a marker file the simulator's fault writer leaves)."""
        marker = self.home / "sim" / SERVER_FAULTS
        return (
            set(json.loads(marker.read_text("utf-8")).get("empty_later_page", []))
            if marker.is_file()
            else set()
        )

    # --- the joint-operations CSV ------------------------------------------------------------------------
    def _joint_route(self, handler: _Handler, path: str, params: dict[str, str]) -> None:
        if path != JOINT_OPS_PATH:
            return handler.send(404, {"error": f"no such endpoint {path}"})
        if not handler.authorised(self.joint_ops_token):
            return handler.send(401, {"error": "missing or invalid bearer token"})
        try:
            day = date.fromisoformat(params.get("date", ""))
        except ValueError:
            raise BadRequest("date=YYYY-MM-DD is required") from None
        file = self.home / file_for(day)
        if not file.is_file():
            return handler.send(404, {"error": f"no joint operations published for {day}"})
        handler.send(200, file.read_bytes(), "text/csv; charset=utf-8")
