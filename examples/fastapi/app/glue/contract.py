# glue: what the HTTP contract (docs/http.md) asks of every request, shared by
# the plan's layer and the fixed one: IDs, bodies, the reset's fields.
import json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
USER_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")
MAX_BODY = 64 << 10
MAX_USER_AGENT = 256


class BadRequest(Exception):
    """A request the contract refuses; status is 400 or 413."""

    def __init__(self, msg: str, status: int = 400):
        super().__init__(msg)
        self.status = status


def check_id(value: str, what: str = "flow id") -> str:
    if not ID_RE.match(value or ""):
        raise BadRequest(f"invalid {what} {value[:64]!r}: want 1-128 characters of [A-Za-z0-9_.:-]")
    return value


def parse_body(raw: bytes) -> Dict[str, Any]:
    """One JSON object of at most MAX_BODY bytes."""
    if len(raw) > MAX_BODY:
        raise BadRequest(f"request body over {MAX_BODY} bytes", 413)
    try:
        v = json.loads(raw.decode("utf-8") if raw else "")
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(f"malformed JSON body: {e}")
    if not isinstance(v, dict):
        raise BadRequest("malformed JSON body: want a JSON object")
    return v


def cut_utf8(s: str, n: int) -> str:
    b = s.encode("utf-8")
    if len(b) <= n:
        return s
    return b[:n].decode("utf-8", "ignore")


SECOND = 1000
HOUR = 3600 * SECOND
DAY = 24 * HOUR
# name: (min, max); 0 or absent keeps the service's own setting.
RESET_RANGES = {
    "pool_size": (1, 500),
    "connect_timeout_ms": (1, 60 * SECOND),
    "publish_budget_ms": (1, 60 * SECOND),
    "call_budget_ms": (1, 60 * SECOND),
    "probe_interval_ms": (10, HOUR),
    "health_interval_ms": (10, HOUR),
    "stream_maxlen": (1, 1_000_000),
    "stream_ttl_ms": (1, 30 * DAY),
    "memory_events": (1, 100_000),
    "outbox_cap": (1, 1_000_000),
    "registry_ttl_ms": (1, DAY),
    "cleanup_interval_ms": (10, HOUR),
    "cache_ttl_active_ms": (1, 30 * DAY),
    "cache_ttl_completed_ms": (1, 30 * DAY),
    "cache_ttl_failed_ms": (1, 30 * DAY),
    "heartbeat_interval_ms": (10, HOUR),
}
FLAGS = ("enabled", "event_bus", "cache", "sse")


@dataclass
class Config:
    """The layer's settings: the service's own, with a reset's overrides."""

    key_prefix: str = ""
    enabled: bool = True
    event_bus: bool = True
    cache: bool = True
    sse: bool = True
    pool_size: int = 50
    connect_timeout_ms: int = 5000
    publish_budget_ms: int = 50
    call_budget_ms: int = 50
    probe_interval_ms: int = 250
    health_interval_ms: int = 30000
    stream_maxlen: int = 10000
    stream_ttl_ms: int = DAY
    memory_events: int = 1000
    outbox_cap: int = 100000
    registry_ttl_ms: int = 300 * SECOND
    cleanup_interval_ms: int = 60 * SECOND
    cache_ttl_active_ms: int = 300 * SECOND
    cache_ttl_completed_ms: int = HOUR
    cache_ttl_failed_ms: int = 1800 * SECOND
    heartbeat_interval_ms: int = 15 * SECOND
    extra: Dict[str, Any] = field(default_factory=dict)

    def apply(self, body: Dict[str, Any]) -> "Config":
        """A copy with body's overrides; BadRequest names every bad field."""
        bad: List[str] = []
        out = Config(**{k: getattr(self, k) for k in self.__dataclass_fields__})
        for name, (lo, hi) in RESET_RANGES.items():
            v = body.get(name)
            if v is None or v == 0:
                continue
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                bad.append(f"{name} {v}: want 0 (keep) or {lo}-{hi}")
                continue
            setattr(out, name, v)
        for name in FLAGS:
            v = body.get(name)
            if v is None:
                continue
            if not isinstance(v, bool):
                bad.append(f"{name} {v!r}: want true or false")
                continue
            setattr(out, name, v)
        prefix = body.get("key_prefix")
        if prefix:
            if not isinstance(prefix, str) or len(prefix) > 256 or any(c <= " " or c > "~" for c in prefix):
                bad.append("key_prefix: want at most 256 printable ASCII characters, no spaces")
            else:
                out.key_prefix = prefix
        if bad:
            raise BadRequest("reset: " + "; ".join(bad))
        return out


def event_json(e: Dict[str, Any], cursor: Optional[str]) -> Dict[str, Any]:
    """An event as the contract spells it (every field present)."""
    out = {
        "id": e.get("id") or "",
        "flow_id": e.get("flow_id", ""),
        "event_type": e.get("event_type", ""),
        "payload": e.get("payload") or {},
        "timestamp": e.get("timestamp", ""),
        "source": e.get("source") or "system",
        "correlation_id": e.get("correlation_id") or "",
    }
    if cursor:
        out["cursor"] = cursor
    return out


def sse_frame(e: Dict[str, Any], cursor: Optional[str]) -> str:
    data = json.dumps(event_json(e, cursor), separators=(",", ":"))
    head = f"id: {cursor}\n" if cursor else ""
    typ = str(e.get("event_type", "")).replace("\r", " ").replace("\n", " ")
    return f"{head}event: {typ}\ndata: {data}\n\n"
