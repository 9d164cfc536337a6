# backend/app/services/sse/redis_connection_registry.py
# The tracker's plan, TASK-006, as written (flaws kept, like impl/seed).
# Every line that is not the plan's is marked "glue" and says why.
import json
import uuid
from datetime import datetime, timedelta
from typing import List, Dict, Optional
from app.core.redis_config import redis_manager
from app.core.config import settings
import logging

logger = logging.getLogger(__name__)

class RedisConnectionRegistry:
    """Manage SSE connections across multiple instances"""

    def __init__(self):
        self.registry_prefix = "sse:connections:"
        self.heartbeat_prefix = "sse:heartbeat:"
        self.ttl = 300  # 5 minutes
        self.server_id = settings.SERVER_ID or str(uuid.uuid4())

        # Fallback in-memory storage
        self.memory_connections: Dict[str, Dict] = {}

    async def register(
        self,
        connection_id: str,
        flow_id: str,
        user_id: str,
        client_info: Optional[Dict] = None
    ) -> bool:
        """Register new SSE connection"""
        try:
            connection_data = {
                "flow_id": flow_id,
                "user_id": user_id,
                "server_id": self.server_id,
                "connected_at": datetime.utcnow().isoformat(),
                "client_info": client_info or {},
                "last_heartbeat": datetime.utcnow().isoformat()
            }

            if redis_manager.is_available():
                key = f"{self.registry_prefix}{connection_id}"

                # Store connection data
                await redis_manager.redis.setex(
                    key,
                    self.ttl,
                    json.dumps(connection_data)
                )

                # Add to flow's connection set
                flow_key = f"{self.registry_prefix}flow:{flow_id}"
                await redis_manager.redis.sadd(flow_key, connection_id)
                await redis_manager.redis.expire(flow_key, self.ttl)

                logger.info(f"Registered SSE connection {connection_id} for flow {flow_id}")
                return True
            else:
                # Fallback to memory
                self.memory_connections[connection_id] = connection_data
                return True

        except Exception as e:
            logger.error(f"Failed to register connection: {e}")
            # Fallback to memory
            self.memory_connections[connection_id] = connection_data
            return True

    async def unregister(self, connection_id: str) -> bool:
        """Remove SSE connection"""
        try:
            if redis_manager.is_available():
                key = f"{self.registry_prefix}{connection_id}"

                # Get connection data first
                data = await redis_manager.redis.get(key)
                if data:
                    conn_data = json.loads(data)
                    flow_id = conn_data["flow_id"]

                    # Remove from flow's connection set
                    flow_key = f"{self.registry_prefix}flow:{flow_id}"
                    await redis_manager.redis.srem(flow_key, connection_id)

                # Delete connection data
                await redis_manager.redis.delete(key)
                logger.info(f"Unregistered SSE connection {connection_id}")
                return True
            else:
                # Fallback to memory
                if connection_id in self.memory_connections:
                    del self.memory_connections[connection_id]
                return True

        except Exception as e:
            logger.error(f"Failed to unregister connection: {e}")
            return False

    async def heartbeat(self, connection_id: str) -> bool:
        """Update connection heartbeat"""
        try:
            if redis_manager.is_available():
                key = f"{self.registry_prefix}{connection_id}"

                # Get existing data
                data = await redis_manager.redis.get(key)
                if data:
                    conn_data = json.loads(data)
                    conn_data["last_heartbeat"] = datetime.utcnow().isoformat()

                    # Update with refresh TTL
                    await redis_manager.redis.setex(
                        key,
                        self.ttl,
                        json.dumps(conn_data)
                    )
                    return True
            else:
                # Memory fallback
                if connection_id in self.memory_connections:
                    self.memory_connections[connection_id]["last_heartbeat"] = \
                        datetime.utcnow().isoformat()
                return True

        except Exception as e:
            logger.error(f"Heartbeat failed: {e}")
            return False

    async def get_flow_connections(self, flow_id: str) -> List[str]:
        """Get all active connections for a flow"""
        try:
            if redis_manager.is_available():
                flow_key = f"{self.registry_prefix}flow:{flow_id}"
                connections = await redis_manager.redis.smembers(flow_key)

                # Verify connections are still active
                active = []
                for conn_id in connections:
                    if await redis_manager.redis.exists(f"{self.registry_prefix}{conn_id}"):
                        active.append(conn_id)
                    else:
                        # Clean up stale reference
                        await redis_manager.redis.srem(flow_key, conn_id)

                return active
            else:
                # Memory fallback
                return [
                    cid for cid, data in self.memory_connections.items()
                    if data["flow_id"] == flow_id
                ]

        except Exception as e:
            logger.error(f"Failed to get flow connections: {e}")
            return []

    async def cleanup_stale_connections(self):
        """Remove connections that haven't sent heartbeat"""
        try:
            if redis_manager.is_available():
                # This would be called periodically by a background task
                pattern = f"{self.registry_prefix}*"
                cursor = 0

                while True:
                    cursor, keys = await redis_manager.redis.scan(
                        cursor,
                        match=pattern,
                        count=100
                    )

                    for key in keys:
                        if ":flow:" in key:
                            continue  # Skip flow sets

                        data = await redis_manager.redis.get(key)
                        if data:
                            conn_data = json.loads(data)
                            last_heartbeat = datetime.fromisoformat(
                                conn_data["last_heartbeat"]
                            )

                            if datetime.utcnow() - last_heartbeat > timedelta(seconds=self.ttl):
                                conn_id = key.replace(self.registry_prefix, "")
                                await self.unregister(conn_id)

                    if cursor == 0:
                        break
            else:
                # Memory cleanup
                now = datetime.utcnow()
                stale = []
                for conn_id, data in self.memory_connections.items():
                    last_heartbeat = datetime.fromisoformat(data["last_heartbeat"])
                    if now - last_heartbeat > timedelta(seconds=self.ttl):
                        stale.append(conn_id)

                for conn_id in stale:
                    del self.memory_connections[conn_id]

        except Exception as e:
            logger.error(f"Cleanup failed: {e}")

# Global registry instance
connection_registry = RedisConnectionRegistry()
