# glue: runs the example under uvicorn; a SIGTERM or Ctrl-C first ends every
# SSE stream (each unregisters), so that uvicorn's graceful shutdown, which
# waits for open responses, finishes.
#
#   python3 serve.py --host 127.0.0.1 --port 8081
#
# Started by the harness as an instance (`harness run --instance-cmd`), it
# is told where to serve in HARNESS_ADDR (host:port), and everything else
# (REDIS_URL, SERVER_ID, HARNESS_CONTROL_TOKEN, ...) in its environment,
# which the app reads: --host and --port default to HARNESS_ADDR's parts.
import argparse
import os
import sys

import uvicorn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from app.main import STATE, app  # noqa: E402


class Server(uvicorn.Server):
    def handle_exit(self, sig, frame):
        STATE.end_streams()
        super().handle_exit(sig, frame)


def main():
    host, port = "127.0.0.1", "8080"
    addr = os.getenv("HARNESS_ADDR", "")
    if addr:
        host, sep, port = addr.rpartition(":")
        if not sep or not host or not port.isdigit():
            print(f"serve.py: HARNESS_ADDR {addr!r}: want host:port", file=sys.stderr)
            sys.exit(3)
    ap = argparse.ArgumentParser(description="the tracker's FastAPI layer over the gonogo HTTP contract")
    ap.add_argument("--host", default=host.strip("[]"))
    ap.add_argument("--port", type=int, default=int(port))
    a = ap.parse_args()
    if not 0 < a.port < 65536:
        print(f"serve.py: --port {a.port}: want 1-65535", file=sys.stderr)
        sys.exit(3)
    cfg = uvicorn.Config(app, host=a.host, port=a.port, log_level=os.getenv("LOG_LEVEL", "warning").lower(),
                         lifespan="on", timeout_keep_alive=60, access_log=False)
    Server(cfg).run()
    # Acknowledged events the layer could neither write nor keep on its
    # way down (it logged `lost=N`): exit 5, as `harness serve` does.
    if getattr(STATE.layer, "lost", 0):
        sys.exit(5)


if __name__ == "__main__":
    main()
