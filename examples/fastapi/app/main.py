# glue: the FastAPI app that serves the plan's layer (or the fixed one, with
# GONOGO_FIXES=all) over the HTTP contract of docs/http.md, and the harness
# control API when HARNESS_CONTROL=true. The plan's TASK-008 endpoint
# (assessment_events_endpoint) is the model of the SSE stream: register,
# heartbeat, unregister in `finally`; the contract fixes its path, headers
# and frames.
import asyncio
import hmac
import logging
import os
import sys
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Dict, Optional

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import gluefix
from app.glue.contract import (MAX_USER_AGENT, USER_RE, BadRequest, Config, check_id, cut_utf8, event_json,
                               parse_body, sse_frame)
from app.schemas.flow_events import FlowEvent

logging.basicConfig(level=os.getenv("LOG_LEVEL", "WARNING").upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
logger = logging.getLogger("glue")

CONTROL = os.getenv("HARNESS_CONTROL", "").lower() == "true"
TOKEN = os.getenv("HARNESS_CONTROL_TOKEN", "")
if CONTROL and len(TOKEN) < 16:
    print("fastapi example: HARNESS_CONTROL=true needs HARNESS_CONTROL_TOKEN of at least 16 characters", file=sys.stderr)
    sys.exit(3)


def _env_flag(name: str, default: str = "true") -> bool:
    return os.getenv(name, default).lower() == "true"


def base_config() -> Config:
    """The service's own settings (a reset's `{}` comes back to them)."""
    return Config(
        key_prefix=os.getenv("KEY_PREFIX", ""),
        enabled=_env_flag("REDIS_ENABLED", "false"),
        event_bus=_env_flag("REDIS_EVENT_BUS"),
        cache=_env_flag("REDIS_CACHE"),
        sse=_env_flag("REDIS_SSE"),
    )


def new_layer():
    if "all" in gluefix.FIXES:
        from app.fixed.layer import FixedLayer
        return FixedLayer(gluefix.profile())
    from app.glue.plan_layer import PlanLayer
    return PlanLayer(gluefix.profile())


class State:
    def __init__(self):
        self.base = base_config()
        self.layer = new_layer()
        self.heartbeat = self.base.heartbeat_interval_ms / 1000
        self.streams: Dict[str, asyncio.Event] = {}
        self.closing = False
        self.resetting = False
        self.lock = asyncio.Lock()

    def end_streams(self):
        for stop in list(self.streams.values()):
            stop.set()

    async def wait_streams(self, limit: float = 10.0):
        deadline = time.monotonic() + limit
        while self.streams and time.monotonic() < deadline:
            await asyncio.sleep(0.01)


STATE = State()
app = FastAPI(title="gonogo fastapi example", docs_url=None, redoc_url=None, openapi_url=None)


@app.on_event("startup")
async def _startup():
    await STATE.layer.start(STATE.base)


@app.on_event("shutdown")
async def _shutdown():
    STATE.closing = True
    STATE.end_streams()
    await STATE.wait_streams(5)
    await STATE.layer.close()


def reply(status: int, body: Any = None, headers: Optional[Dict[str, str]] = None) -> Response:
    h = {"X-Layer-Mode": STATE.layer.mode()}
    h.update(headers or {})
    if body is None:
        return Response(status_code=status, headers=h)
    return JSONResponse(body, status_code=status, headers=h)


def error(status: int, msg: str, headers: Optional[Dict[str, str]] = None) -> Response:
    return reply(status, {"error": msg}, headers)


@app.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException):
    return error(exc.status_code, f"{exc.detail}: {request.method} {request.url.path[:128]}", getattr(exc, "headers", None))


@app.exception_handler(BadRequest)
async def _bad_request(request: Request, exc: BadRequest):
    return error(exc.status, str(exc))


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def parse_time(v: str, what: str) -> datetime:
    try:
        t = datetime.fromisoformat(v.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{what} {v[:64]!r}: want an RFC 3339 time")
    if t.tzinfo is None:
        raise BadRequest(f"{what} {v[:64]!r}: want an RFC 3339 time with its offset")
    return t.astimezone(timezone.utc)


# ---- health and monitoring ----

@app.get("/health")
async def health():
    h = await STATE.layer.health()
    h["profile"] = STATE.layer.profile
    if h["services"]["redis"].get("status") in ("unhealthy", "unavailable"):
        h["status"] = "degraded"
    return reply(200, h)


@app.get("/health/redis")
async def health_redis():
    return reply(200, await STATE.layer.info())


@app.get("/metrics/redis")
async def metrics(flow: Optional[str] = None):
    layer = STATE.layer
    out: Dict[str, Any] = {"profile": layer.profile, "mode": layer.mode(), "streams": len(STATE.streams)}
    try:
        out["connections"] = await layer.count()
    except Exception as e:
        out["connections_error"] = str(e)
    if flow is not None:
        check_id(flow)
        try:
            out["cache"] = await layer.cache_metrics(flow)
        except Exception as e:
            return error(503, f"cache metrics: {e}")
    return reply(200, out)


# ---- events ----

@app.post("/flows/{flow_id}/events")
async def publish(flow_id: str, request: Request):
    check_id(flow_id)
    body = parse_body(await request.body())
    typ, payload, eid = body.get("event_type"), body.get("payload"), body.get("id")
    if not isinstance(typ, str) or not typ:
        raise BadRequest("event_type is required")
    if payload is not None and not isinstance(payload, dict):
        raise BadRequest("payload must be a JSON object")
    if eid is not None:
        if not isinstance(eid, str):
            raise BadRequest("id must be a string")
        check_id(eid, "event id")
    for f in ("source", "correlation_id", "timestamp"):
        if body.get(f) is not None and not isinstance(body[f], str):
            raise BadRequest(f"{f} must be a string")
    ts = parse_time(body["timestamp"], "timestamp") if body.get("timestamp") else datetime.now(timezone.utc)
    e = FlowEvent(id=eid or "ev-" + uuid.uuid4().hex, flow_id=flow_id, event_type=typ, payload=payload or {},
                  timestamp=ts, source=body.get("source") or "system", correlation_id=body.get("correlation_id") or "")
    try:
        await STATE.layer.publish(e)
    except Exception as exc:
        return error(503, f"publish failed: {exc}")
    return reply(201, {"id": e.id, "flow_id": flow_id})


@app.get("/flows/{flow_id}/events/history")
async def history(flow_id: str, count: Optional[str] = None, since: Optional[str] = None):
    check_id(flow_id)
    n = 100
    if count is not None:
        if not count.isdigit() or not 1 <= int(count) <= 10000:
            raise BadRequest(f"count {count[:32]!r}: want an integer from 1 to 10000")
        n = int(count)
    t = parse_time(since, "since") if since else None
    try:
        evs = await STATE.layer.history(flow_id, n, t)
    except Exception as exc:
        return error(503, f"history: {exc}")
    return reply(200, {"flow_id": flow_id, "events": [event_json(e, c) for c, e in evs]})


@app.get("/flows/{flow_id}/events")
async def stream(flow_id: str, request: Request, last_event_id: Optional[str] = None):
    check_id(flow_id)
    users = request.headers.getlist("x-user-id")
    for u in users:
        if not USER_RE.match(u):
            raise BadRequest(f"X-User-ID {u[:64]!r}: want 1-128 characters of [A-Za-z0-9_.:@-]")
    user = users[0] if users else "anonymous"
    after = request.headers.get("last-event-id") or last_event_id or ""
    if STATE.closing or STATE.resetting:
        return error(503, "shutting down or resetting")
    layer, hb = STATE.layer, STATE.heartbeat
    try:
        sub = await layer.subscribe(flow_id, after)
    except Exception as exc:
        return error(503, f"subscribe: {exc}")
    conn = "conn-" + uuid.uuid4().hex[:16]
    info = {"ip": request.client.host if request.client else "",
            "user_agent": cut_utf8(request.headers.get("user-agent", ""), MAX_USER_AGENT)}
    try:
        ok = await layer.register(conn, flow_id, user, info)
    except Exception as exc:
        ok, why = False, str(exc)
    else:
        why = "register failed"
    if not ok:
        await sub.close()
        return error(503, f"register: {why}")
    stop = asyncio.Event()
    STATE.streams[conn] = stop

    async def frames():
        loop = asyncio.get_running_loop()
        try:
            yield f"retry: 100\n: connected {conn}\n\n"
            next_hb = loop.time() + hb
            while not stop.is_set() and not getattr(sub, "stop", False):  # stop: a slow consumer (fixed layer)
                item = await sub.get(max(0.0, min(0.25, next_hb - loop.time())))
                if item is not None:
                    yield sse_frame(item[1], item[0])
                if loop.time() >= next_hb:
                    next_hb += hb
                    await layer.heartbeat(conn)
                    yield f": heartbeat {now_rfc3339()}\n\n"
        finally:
            STATE.streams.pop(conn, None)
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(5):
                    await layer.unregister(conn)
                    await sub.close()

    headers = {"Cache-Control": "no-cache", "X-Connection-ID": conn, "X-Accel-Buffering": "no",
               "X-Layer-Mode": layer.mode()}
    return StreamingResponse(frames(), media_type="text/event-stream", headers=headers)


# ---- flow state cache ----

@app.get("/flows/{flow_id}/state")
async def get_state(flow_id: str):
    check_id(flow_id)
    try:
        state, lease = await STATE.layer.cache_get(flow_id)
    except Exception as exc:
        return error(503, f"cache get: {exc}")
    if state is None:
        return reply(404, {"error": "not cached", "flow_id": flow_id, "lease": lease},
                     {"X-Cache-Lease": lease} if lease else None)
    return reply(200, {"flow_id": flow_id, "state": state})


@app.put("/flows/{flow_id}/state")
async def put_state(flow_id: str, request: Request):
    check_id(flow_id)
    body = parse_body(await request.body())
    state, status, lease = body.get("state"), body.get("status"), body.get("lease") or ""
    if not isinstance(state, dict):
        raise BadRequest("state is required and must be a JSON object")
    if status is not None and not isinstance(status, str) or not isinstance(lease, str):
        raise BadRequest("status and lease must be strings")
    try:
        res = await STATE.layer.cache_set(flow_id, state, status, lease)
    except Exception as exc:
        return error(503, f"cache set: {exc}")
    if res == "conflict":
        return error(409, "stale lease: the flow was invalidated after the read that issued it")
    if res == "failed":
        return error(503, "cache set failed")
    return reply(204)


@app.delete("/flows/{flow_id}/state")
async def delete_state(flow_id: str):
    check_id(flow_id)
    try:
        res = await STATE.layer.cache_invalidate(flow_id)
    except Exception as exc:
        return error(503, f"cache invalidate: {exc}")
    if res == "deferred":
        return reply(202, {"flow_id": flow_id, "deferred": True, "reason": "Redis unreachable: applied when it is back"})
    return reply(204)


# ---- harness control API (HARNESS_CONTROL=true only; never in production) ----

def authorized(request: Request) -> Optional[Response]:
    got = request.headers.get("authorization", "")
    if not got.startswith("Bearer ") or not hmac.compare_digest(got[7:].encode(), TOKEN.encode()):
        return error(401, "control API: want the header Authorization: Bearer followed by the service's HARNESS_CONTROL_TOKEN",
                     {"WWW-Authenticate": 'Bearer realm="harness-control"'})
    return None


async def control_info(request: Request):
    # streams: where a flow's events live under the reset's key prefix (both
    # layers keep the plan's flow:events:<id>, each entry naming its event
    # in the field id), so the harness judges loss on Redis, not on answers.
    return authorized(request) or reply(200, {"control": 1, "abilities": ["reset", "registry"], "profile": STATE.layer.profile,
                                              "streams": "flow:events:{flow}"})


async def reset(request: Request):
    if (denied := authorized(request)):
        return denied
    body = parse_body(await request.body())
    cfg = STATE.base.apply(body)
    async with STATE.lock:
        STATE.resetting = True
        try:
            STATE.end_streams()
            await STATE.wait_streams()
            await STATE.layer.close()
            STATE.layer = new_layer()
            await STATE.layer.start(cfg)
            STATE.heartbeat = (body.get("heartbeat_interval_ms") or STATE.base.heartbeat_interval_ms) / 1000
        finally:
            STATE.resetting = False
    return reply(200, {"profile": STATE.layer.profile, "mode": STATE.layer.mode(), "key_prefix": body.get("key_prefix") or ""})


async def reg_register(request: Request):
    if (denied := authorized(request)):
        return denied
    b = parse_body(await request.body())
    conn, flow, user, info = b.get("connection_id"), b.get("flow_id"), b.get("user_id") or "", b.get("client_info") or {}
    if not isinstance(conn, str) or not isinstance(flow, str):
        raise BadRequest("connection_id and flow_id: want 1-128 characters of [A-Za-z0-9_.:-]")
    check_id(conn, "connection_id")
    check_id(flow, "flow_id")
    if user and (not isinstance(user, str) or not USER_RE.match(user)):
        raise BadRequest("user_id: want 1-128 characters of [A-Za-z0-9_.:@-]")
    if not isinstance(info, dict) or len(info) > 16 or any(
            not isinstance(k, str) or not isinstance(v, str) or not 1 <= len(k.encode()) <= 64 or len(v.encode()) > 256
            for k, v in info.items()):
        raise BadRequest("client_info: at most 16 string entries, keys of 1-64 bytes, values of at most 256 bytes")
    return await _done("register", STATE.layer.register(conn, flow, user, info))


async def _done(what: str, call) -> Response:
    try:
        ok = await call
    except Exception as exc:
        return error(503, f"{what}: {exc}")
    return reply(204) if ok else error(503, f"{what} failed")


async def reg_heartbeat(request: Request):
    if (denied := authorized(request)):
        return denied
    return await _done("heartbeat", STATE.layer.heartbeat(check_id(request.path_params["conn"], "connection id")))


async def reg_unregister(request: Request):
    if (denied := authorized(request)):
        return denied
    return await _done("unregister", STATE.layer.unregister(check_id(request.path_params["conn"], "connection id")))


async def reg_lookup(request: Request):
    if (denied := authorized(request)):
        return denied
    flow = check_id(request.path_params["flow_id"])
    try:
        ids = await STATE.layer.lookup(flow)
    except Exception as exc:
        return error(503, f"lookup: {exc}")
    return reply(200, {"flow_id": flow, "connections": ids})


async def reg_cleanup(request: Request):
    if (denied := authorized(request)):
        return denied
    try:
        n = await STATE.layer.cleanup()
    except Exception as exc:
        return error(503, f"cleanup: {exc}")
    return reply(200, {"removed": n})


if CONTROL:
    for path, fn, method in [
        ("/_harness", control_info, "GET"),
        ("/_harness/reset", reset, "POST"),
        ("/_harness/registry/connections", reg_register, "POST"),
        ("/_harness/registry/connections/{conn}/heartbeat", reg_heartbeat, "POST"),
        ("/_harness/registry/connections/{conn}", reg_unregister, "DELETE"),
        ("/_harness/registry/flows/{flow_id}", reg_lookup, "GET"),
        ("/_harness/registry/cleanup", reg_cleanup, "POST"),
    ]:
        app.add_api_route(path, fn, methods=[method], include_in_schema=False)
