#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""New connections at a fixed rate; one line per connection: who served it, and when.

Run inside the test cluster's client network namespace, against a ClusterIP of that cluster:

  probe.py HOST PORT --rate R --max-seconds S

Each connection reads the test app's greeting (its pod's name) and closes. Prints, flushed,
"<CLOCK_MONOTONIC at connect> <pod name>" per served connection and "<time> ERR <reason>" per
failed one, until SIGTERM or S seconds. CLOCK_MONOTONIC is the same clock in every process
of the machine, so the caller compares these times with its own.
"""

import argparse
import signal
import socket
import sys
import threading
import time


def one(host, port, timeout, out, lock):
    t = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            data = b""
            while not data.endswith(b"\n") and len(data) < 256:
                chunk = s.recv(256)
                if not chunk:
                    break
                data += chunk
        line = f"{t:.4f} {data.strip().decode('utf-8', 'replace') or 'ERR empty'}"
    except OSError as e:
        line = f"{t:.4f} ERR {type(e).__name__}"
    with lock:
        out.write(line + "\n")
        out.flush()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--max-seconds", type=float, required=True)
    p.add_argument("--timeout", type=float, default=5.0)
    args = p.parse_args()
    if not (0 < args.rate <= 2000 and 0 < args.max_seconds <= 7200):
        p.error("--rate must be 0..2000 and --max-seconds 0..7200")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    lock = threading.Lock()
    sem = threading.Semaphore(256)
    t0 = next_at = time.monotonic()
    while not stop.is_set() and time.monotonic() - t0 < args.max_seconds:
        now = time.monotonic()
        if now < next_at:
            time.sleep(min(next_at - now, 0.01))
            continue
        next_at += 1.0 / args.rate
        if not sem.acquire(timeout=args.timeout):
            continue

        def run():
            try:
                one(args.host, args.port, args.timeout, sys.stdout, lock)
            finally:
                sem.release()
        threading.Thread(target=run, daemon=True).start()


if __name__ == "__main__":
    main()
