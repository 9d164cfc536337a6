# backend/app/services/cache/flow_state_cache.py
# The tracker's plan, TASK-007, as written (flaws kept, like impl/seed).
# Every line that is not the plan's is marked "glue" and says why.
import json
from typing import Optional, Dict, Any
from datetime import datetime
from app.core.redis_config import redis_manager
import logging

logger = logging.getLogger(__name__)

class FlowStateCache:
    """Redis cache for flow states with intelligent TTL"""

    def __init__(self):
        self.cache_prefix = "cache:flow:state:"
        self.metadata_prefix = "cache:flow:meta:"
        self.metrics_prefix = "metrics:cache:"

        # TTL configuration
        self.ttl_active = 300      # 5 minutes for active flows
        self.ttl_completed = 3600  # 1 hour for completed flows
        self.ttl_failed = 1800     # 30 minutes for failed flows

    async def get(self, flow_id: str) -> Optional[Dict[str, Any]]:
        """Get flow state from cache"""
        if not redis_manager.is_available():
            return None

        try:
            key = f"{self.cache_prefix}{flow_id}"

            # Track cache access
            await self._track_access(flow_id)

            # Get cached data
            cached = await redis_manager.redis.get(key)
            if cached:
                await self._track_hit(flow_id)
                return json.loads(cached)
            else:
                await self._track_miss(flow_id)
                return None

        except Exception as e:
            logger.error(f"Cache get error: {e}")
            return None

    async def set(
        self,
        flow_id: str,
        state: Dict[str, Any],
        status: Optional[str] = None
    ) -> bool:
        """Set flow state in cache with intelligent TTL"""
        if not redis_manager.is_available():
            return False

        try:
            key = f"{self.cache_prefix}{flow_id}"

            # Determine TTL based on status
            ttl = self.ttl_active
            if status:
                if status in ["completed", "success"]:
                    ttl = self.ttl_completed
                elif status in ["failed", "error", "cancelled"]:
                    ttl = self.ttl_failed

            # Cache the state
            await redis_manager.redis.setex(
                key,
                ttl,
                json.dumps(state)
            )

            # Cache metadata separately
            metadata = {
                "flow_id": flow_id,
                "status": status or state.get("status", "unknown"),
                "cached_at": datetime.utcnow().isoformat(),
                "ttl": ttl
            }

            meta_key = f"{self.metadata_prefix}{flow_id}"
            await redis_manager.redis.setex(
                meta_key,
                ttl,
                json.dumps(metadata)
            )

            logger.debug(f"Cached flow {flow_id} with TTL {ttl}s")
            return True

        except Exception as e:
            logger.error(f"Cache set error: {e}")
            return False

    async def invalidate(self, flow_id: str) -> bool:
        """Remove flow from cache"""
        if not redis_manager.is_available():
            return False

        try:
            keys = [
                f"{self.cache_prefix}{flow_id}",
                f"{self.metadata_prefix}{flow_id}"
            ]

            deleted = await redis_manager.redis.delete(*keys)
            logger.debug(f"Invalidated cache for flow {flow_id}, deleted {deleted} keys")
            return deleted > 0

        except Exception as e:
            logger.error(f"Cache invalidate error: {e}")
            return False

    async def _track_access(self, flow_id: str):
        """Track cache access for metrics"""
        try:
            # Increment access counter
            await redis_manager.redis.hincrby(
                f"{self.metrics_prefix}access",
                flow_id,
                1
            )

            # Update last access time
            await redis_manager.redis.hset(
                f"{self.metrics_prefix}last_access",
                flow_id,
                datetime.utcnow().isoformat()
            )
        except Exception:
            pass  # Don't fail on metrics

    async def _track_hit(self, flow_id: str):
        """Track cache hit"""
        try:
            await redis_manager.redis.hincrby(
                f"{self.metrics_prefix}hits",
                flow_id,
                1
            )
        except Exception:
            pass

    async def _track_miss(self, flow_id: str):
        """Track cache miss"""
        try:
            await redis_manager.redis.hincrby(
                f"{self.metrics_prefix}misses",
                flow_id,
                1
            )
        except Exception:
            pass

    async def get_metrics(self, flow_id: str) -> Dict[str, Any]:
        """Get cache metrics for a flow"""
        if not redis_manager.is_available():
            return {}

        try:
            access = await redis_manager.redis.hget(f"{self.metrics_prefix}access", flow_id) or 0
            hits = await redis_manager.redis.hget(f"{self.metrics_prefix}hits", flow_id) or 0
            misses = await redis_manager.redis.hget(f"{self.metrics_prefix}misses", flow_id) or 0

            hit_rate = float(hits) / float(access) * 100 if int(access) > 0 else 0

            return {
                "access_count": int(access),
                "hits": int(hits),
                "misses": int(misses),
                "hit_rate": round(hit_rate, 2)
            }

        except Exception as e:
            logger.error(f"Get metrics error: {e}")
            return {}

# Global cache instance
flow_state_cache = FlowStateCache()
