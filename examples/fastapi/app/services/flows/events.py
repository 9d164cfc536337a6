# backend/app/services/flows/events.py
# The tracker's plan, TASK-005, as written (flaws kept, like impl/seed).
# Every line that is not the plan's is marked "glue" and says why.
from app.services.flows.redis_event_bus import RedisFlowEventBus

# Replace the in-memory implementation
flow_event_bus = RedisFlowEventBus()
