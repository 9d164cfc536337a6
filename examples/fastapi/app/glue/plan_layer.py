# glue: the plan's module-level objects (redis_manager, flow_event_bus,
# connection_registry, flow_state_cache, redis_monitor) behind the calls the
# HTTP contract makes. Nothing here fixes a flaw of the plan; it adds only
# what the plan leaves out and the contract needs: a key prefix and the
# scenario's settings on the plan's own attributes, the periodic cleanup the
# plan says "would be called periodically by a background task", SSE live
# delivery (the plan publishes on Pub/Sub but shows no subscriber; like
# impl/seed: the flow's channel in Redis mode, a local fan-out in memory
# mode), and a registry count (the plan's metrics call a
# get_total_connections it never defines).
import asyncio
import json
import logging
import math
from datetime import datetime
from typing import Any, Dict, List, Optional, Set, Tuple

from app.api.v1.endpoints.health import health_check
from app.core.redis_config import redis_manager
from app.glue.contract import Config
from app.monitoring.redis_monitor import redis_monitor
from app.schemas.flow_events import FlowEvent
from app.services.cache.flow_state_cache import flow_state_cache
from app.services.flows.events import flow_event_bus
from app.services.sse.redis_connection_registry import connection_registry

logger = logging.getLogger("glue")

SUB_QUEUE = 256  # like impl/seed's subscriber buffer: a slow subscriber misses events


def _secs(ms: int) -> int:
    return max(1, math.ceil(ms / 1000))


def event_dict(e: FlowEvent) -> Dict[str, Any]:
    return json.loads(e.json())


class _RedisSub:
    """The flow's Pub/Sub channel (Redis mode)."""

    def __init__(self, ps):
        self.ps = ps

    async def get(self, timeout: float) -> Optional[Tuple[Optional[str], Dict[str, Any]]]:
        try:
            msg = await self.ps.get_message(ignore_subscribe_messages=True, timeout=timeout)
        except Exception as e:  # the connection dropped: redis-py reconnects and resubscribes on the next call
            logger.warning("pubsub: %s", e)
            await asyncio.sleep(min(timeout, 0.1))
            return None
        if not msg or msg.get("type") != "message":
            return None
        try:
            return None, json.loads(msg["data"])
        except ValueError:
            return None

    async def close(self):
        try:
            await self.ps.close()
        except Exception:
            pass


class _LocalSub:
    """The local fan-out of memory-mode publishes."""

    def __init__(self, layer: "PlanLayer", flow: str):
        self.layer, self.flow = layer, flow
        self.q: asyncio.Queue = asyncio.Queue(SUB_QUEUE)
        layer.local.setdefault(flow, set()).add(self.q)

    async def get(self, timeout: float):
        try:
            return None, await asyncio.wait_for(self.q.get(), timeout)
        except asyncio.TimeoutError:
            return None

    async def close(self):
        subs = self.layer.local.get(self.flow, set())
        subs.discard(self.q)
        if not subs:
            self.layer.local.pop(self.flow, None)


class PlanLayer:
    """The plan as written (GONOGO_FIXES unset or "keepalive")."""

    def __init__(self, profile: str):
        self.profile = profile
        self.cfg = Config()
        self.local: Dict[str, Set[asyncio.Queue]] = {}
        self.cleanup_task: Optional[asyncio.Task] = None

    async def start(self, cfg: Config):
        self.cfg = cfg
        p = cfg.key_prefix
        redis_manager.__init__()
        redis_manager.enabled = cfg.enabled
        await redis_manager.initialize()
        flow_event_bus.__init__()
        flow_event_bus.stream_prefix = p + flow_event_bus.stream_prefix
        flow_event_bus.channel_prefix = p + flow_event_bus.channel_prefix
        flow_event_bus.max_events_per_flow = cfg.stream_maxlen
        flow_event_bus.ttl_seconds = _secs(cfg.stream_ttl_ms)
        connection_registry.__init__()
        connection_registry.registry_prefix = p + connection_registry.registry_prefix
        connection_registry.heartbeat_prefix = p + connection_registry.heartbeat_prefix
        connection_registry.ttl = _secs(cfg.registry_ttl_ms)
        flow_state_cache.__init__()
        flow_state_cache.cache_prefix = p + flow_state_cache.cache_prefix
        flow_state_cache.metadata_prefix = p + flow_state_cache.metadata_prefix
        flow_state_cache.metrics_prefix = p + flow_state_cache.metrics_prefix
        flow_state_cache.ttl_active = _secs(cfg.cache_ttl_active_ms)
        flow_state_cache.ttl_completed = _secs(cfg.cache_ttl_completed_ms)
        flow_state_cache.ttl_failed = _secs(cfg.cache_ttl_failed_ms)
        self.local = {}
        self.cleanup_task = asyncio.ensure_future(self._cleanup_loop(cfg.cleanup_interval_ms / 1000))

    async def _cleanup_loop(self, every: float):
        while True:
            await asyncio.sleep(every)
            await connection_registry.cleanup_stale_connections()

    async def close(self):
        if self.cleanup_task:
            self.cleanup_task.cancel()
            self.cleanup_task = None
        await redis_manager.close()

    def mode(self) -> str:
        return "redis" if redis_manager.is_available() else "memory"

    async def health(self) -> Dict[str, Any]:
        h = await health_check()
        r = h["services"]["redis"]
        if not isinstance(r, dict):  # the plan reports a bare string when not connected
            r = {"status": "disabled" if not redis_manager.enabled else r}
        r["mode"] = self.mode()
        h["services"]["redis"] = r
        return h

    async def info(self) -> Dict[str, Any]:
        return await redis_monitor.get_redis_info()

    async def publish(self, e: FlowEvent):
        await flow_event_bus.publish(e)
        if not redis_manager.is_available():
            for q in list(self.local.get(e.flow_id, ())):
                try:
                    q.put_nowait(event_dict(e))
                except asyncio.QueueFull:
                    pass  # like impl/seed: a slow local subscriber misses events

    async def history(self, flow: str, count: int, since: Optional[datetime]) -> List[Tuple[Optional[str], Dict[str, Any]]]:
        return [(None, event_dict(e)) for e in await flow_event_bus.get_events(flow, count, since)]

    async def subscribe(self, flow: str, after: str):
        # after is ignored: the plan has no catch-up (like impl/seed)
        if not redis_manager.is_available():
            return _LocalSub(self, flow)
        ps = redis_manager.redis.pubsub()
        await ps.subscribe(f"{flow_event_bus.channel_prefix}{flow}")
        return _RedisSub(ps)

    async def register(self, conn: str, flow: str, user: str, info: Dict[str, str]) -> bool:
        return bool(await connection_registry.register(conn, flow, user, info))

    async def heartbeat(self, conn: str) -> bool:
        return bool(await connection_registry.heartbeat(conn))

    async def unregister(self, conn: str) -> bool:
        return bool(await connection_registry.unregister(conn))

    async def lookup(self, flow: str) -> List[str]:
        return list(await connection_registry.get_flow_connections(flow))

    async def count(self) -> int:
        if not redis_manager.is_available():
            return len(connection_registry.memory_connections)
        n, cursor, prefix = 0, 0, connection_registry.registry_prefix
        while True:
            cursor, keys = await redis_manager.redis.scan(cursor, match=f"{prefix}*", count=100)
            n += sum(1 for k in keys if ":flow:" not in k)
            if cursor == 0:
                return n

    async def cleanup(self) -> int:
        before = await self.count()
        await connection_registry.cleanup_stale_connections()
        return max(0, before - await self.count())

    async def cache_get(self, flow: str) -> Tuple[Optional[Dict[str, Any]], str]:
        return await flow_state_cache.get(flow), ""

    async def cache_set(self, flow: str, state: Dict[str, Any], status: Optional[str], lease: str) -> str:
        ok = await flow_state_cache.set(flow, state, status=status)
        if not ok and redis_manager.is_available():
            return "failed"
        return "stored"

    async def cache_invalidate(self, flow: str) -> str:
        await flow_state_cache.invalidate(flow)  # False for "nothing cached" and for an error alike
        return "done"

    async def cache_metrics(self, flow: str) -> Dict[str, Any]:
        m = await flow_state_cache.get_metrics(flow)
        return m or {"access_count": 0, "hits": 0, "misses": 0, "hit_rate": 0}
