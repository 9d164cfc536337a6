# glue (switch): GONOGO_FIXES names the fixes applied on top of the plan.
#
#   unset or ""   the plan as written
#   keepalive     only the socket options of TASK-003: the plan passes the
#                 numbers 1, 2, 3 as TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT,
#                 but on Linux those are TCP_NODELAY, TCP_MAXSEG and TCP_CORK;
#                 TCP_MAXSEG 3 is refused (EINVAL), so every connection fails
#                 and the plan's layer serves from memory for its whole life
#   all (or 1)    the fixed layer (app/fixed/): every fix a team makes after
#                 reading the gate's report, keepalive included
import os
import socket

FIXES = {f.strip() for f in os.getenv("GONOGO_FIXES", "").lower().split(",") if f.strip()}
if FIXES & {"1", "all"}:
    FIXES |= {"all", "keepalive"}


def keepalive_options(plan_options):
    """The plan's socket_keepalive_options, or the constants it meant."""
    if "keepalive" not in FIXES:
        return plan_options
    return {socket.TCP_KEEPIDLE: 3, socket.TCP_KEEPINTVL: 3, socket.TCP_KEEPCNT: 3}


def profile():
    """The implementation's name in GET /health (names the run's directories)."""
    if "all" in FIXES:
        return "fastapi-fixed"
    if "keepalive" in FIXES:
        return "fastapi-tracker-keepalive"
    return "fastapi-tracker"
