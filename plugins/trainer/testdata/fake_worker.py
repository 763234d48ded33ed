"""A stand-in for the training worker, for the supervision tests: it speaks
the same event protocol and misbehaves on request. Usage: fake_worker.py
COMMAND SPEC.json, with COMMAND events, fail, crash, stubborn, graceful or env."""
import json
import os
import signal
import subprocess
import sys
import time

ev = os.fdopen(int(os.environ["AZAION_EVENTS_FD"]), "w", buffering=1)


def emit(kind, **kw):
    kw["event"] = kind
    ev.write(json.dumps(kw) + "\n")


cmd = sys.argv[1]
if cmd == "events":
    for i in range(1, 4):
        emit("batch", epoch=1, epochs=1, batch=i, batches=3, losses={"box": 1.0 / i})
    print("console output of the worker")
    emit("result", ok=True)
elif cmd == "fail":
    emit("error", message="disk on fire")
    sys.exit(1)
elif cmd == "crash":
    print("Traceback: something broke", file=sys.stderr)
    sys.exit(3)
elif cmd in ("stubborn", "graceful"):
    child = subprocess.Popen(["sleep", "300"])  # a data loader stand-in, in the same group
    if cmd == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        def stop(*_):
            emit("canceled")
            sys.exit(130)
        signal.signal(signal.SIGTERM, stop)
    emit("start", epochs=1, child=child.pid)
    while True:
        time.sleep(0.05)
elif cmd == "env":
    emit("result", env=dict(os.environ))
