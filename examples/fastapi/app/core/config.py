# backend/app/core/config.py: the plan's feature flags (Rollback Plan) and the
# SERVER_ID the registry reads (TASK-006, TASK-010).
# glue: pydantic 1.10's BaseSettings (Debian); SERVER_ID is read by the plan's
# registry but never declared in the plan.
from typing import Optional

from pydantic import BaseSettings, Field


class Settings(BaseSettings):
    # Redis feature flags
    REDIS_ENABLED: bool = Field(default=False, env="REDIS_ENABLED")
    REDIS_EVENT_BUS: bool = Field(default=False, env="REDIS_EVENT_BUS")
    REDIS_CACHE: bool = Field(default=False, env="REDIS_CACHE")
    REDIS_SSE: bool = Field(default=False, env="REDIS_SSE")
    SERVER_ID: Optional[str] = Field(default=None, env="SERVER_ID")  # glue


settings = Settings()
