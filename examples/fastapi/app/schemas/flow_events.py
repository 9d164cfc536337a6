# glue: app.schemas.flow_events, which the plan imports but does not show.
# The fields are the ones the plan's code reads and writes, plus the event
# id the HTTP contract (docs/http.md) gives every event.
import uuid
from datetime import datetime
from typing import Any, Dict, Optional

from pydantic import BaseModel, Field


class FlowEvent(BaseModel):
    id: Optional[str] = Field(default_factory=lambda: "ev-" + uuid.uuid4().hex)
    flow_id: str
    event_type: str
    payload: Dict[str, Any] = Field(default_factory=dict)
    timestamp: datetime
    source: Optional[str] = None
    correlation_id: Optional[str] = None

    def model_dump_json(self) -> str:
        # The plan calls pydantic 2's name; Debian's python3-pydantic is 1.10.
        return self.json()
