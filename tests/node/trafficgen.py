#!/usr/bin/env python3
"""Real TCP connections to a Kanary destination, counted by the version that served each.

Run inside the test cluster's client network namespace (ip netns exec $KANARY_CLIENT_NETNS
...), against a ClusterIP or a pod IP of that cluster only. Every connection expects the
test app's greeting: its version's name and a newline, sent as soon as it accepts.

  trafficgen.py split HOST PORT --count N [--parallel P]
      N connections, P at a time; prints one JSON object: ok, failed, by_name, errors, and
      each failure's start (seconds into the run), duration, client port and reason.
  trafficgen.py stream HOST PORT --rate R --max-seconds S [--long K] [--stop-file F]
                       [--progress-file P]
      new connections at R per second, plus K long connections that send a line every
      second and expect it echoed, until SIGTERM/SIGINT, the stop file exists, or S seconds;
      prints one JSON object with the failures (time, client port, reason), counts per
      second, and how and when each long connection ended. With --progress-file, P is
      replaced a few times a second by a JSON object of the counts so far (seconds, sent, ok,
      failed, long_open, long_ended), so a test can wait for traffic to have flowed instead
      of sleeping.
Every loop is bounded by --count or --max-seconds; every socket operation by --timeout.
"""

import argparse
import errno
import json
import os
import select
import signal
import socket
import sys
import threading
import time
from collections import Counter

PROGRESS_INTERVAL = 0.2  # seconds between two writes of --progress-file


def one_connection(host, port, timeout):
    """Connect, read the greeting line, close. Returns (name, None, local port) or (None,
    reason, local port); the local port is 0 when none was allocated.

    The connect is non-blocking, so the local port the kernel chose is known even when the
    connection fails: a failure can then be matched with the conntrack entry of its 4-tuple."""
    lport = 0
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setblocking(False)
            err = s.connect_ex((host, port))
            if err not in (0, errno.EINPROGRESS):
                raise OSError(err, os.strerror(err))
            lport = s.getsockname()[1]
            if err:
                poller = select.poll()
                poller.register(s, select.POLLOUT)
                if not poller.poll(timeout * 1000):
                    raise socket.timeout()
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise OSError(err, os.strerror(err))
            s.settimeout(timeout)
            data = b""
            while not data.endswith(b"\n") and len(data) < 256:
                chunk = s.recv(256)
                if not chunk:
                    why = "closed before greeting" if not data else "partial greeting"
                    return None, why, lport
                data += chunk
            return data.strip().decode("utf-8", "replace"), None, lport
    except socket.timeout:
        return None, "timeout", lport
    except OSError as e:
        if e.errno == errno.ECONNREFUSED:
            return None, "refused", lport
        if e.errno == errno.ECONNRESET:
            return None, "reset", lport
        return None, f"error {e.errno}: {e.strerror}", lport


def split(args):
    lock = threading.Lock()
    names, errors = Counter(), Counter()
    failures = []
    remaining = [args.count]
    start = time.monotonic()

    def worker():
        while True:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            at = time.monotonic() - start
            name, err, lport = one_connection(args.host, args.port, args.timeout)
            with lock:
                if err:
                    errors[err] += 1
                    failures.append({"at": round(at, 2), "reason": err, "port": lport,
                                     "seconds": round(time.monotonic() - start - at, 2)})
                else:
                    names[name] += 1

    threads = [threading.Thread(target=worker) for _ in range(max(1, args.parallel))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = sum(names.values())
    return {
        "total": args.count,
        "ok": ok,
        "failed": sum(errors.values()),
        "by_name": dict(names),
        "share": {n: round(100.0 * c / ok, 2) for n, c in names.items()} if ok else {},
        "errors": dict(errors),
        "failures": sorted(failures, key=lambda f: f["at"])[:200],
        "seconds": round(time.monotonic() - start, 2),
    }


class LongConnection(threading.Thread):
    """One connection held open: a line a second, each echoed back."""

    def __init__(self, host, port, timeout, t0, stop):
        super().__init__(daemon=True)
        self.host, self.port, self.timeout, self.t0, self.stop = host, port, timeout, t0, stop
        self.result = {"served_by": None, "opened_at": None, "ended_at": None, "end": "open",
                       "echoes": 0}

    def now(self):
        return round(time.monotonic() - self.t0, 2)

    def run(self):
        r = self.result
        try:
            s = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as e:
            r.update(end=f"connect failed: {e}", ended_at=self.now())
            return
        with s:
            s.settimeout(self.timeout)
            r["opened_at"] = self.now()
            buf = b""
            try:
                while b"\n" not in buf:
                    chunk = s.recv(256)
                    if not chunk:
                        r.update(end="closed before greeting", ended_at=self.now())
                        return
                    buf += chunk
                line, _, buf = buf.partition(b"\n")
                r["served_by"] = line.decode("utf-8", "replace")
                n = 0
                while not self.stop.wait(1.0):
                    n += 1
                    msg = f"ping {n}\n".encode()
                    s.sendall(msg)
                    while len(buf) < len(msg):
                        chunk = s.recv(256)
                        if not chunk:
                            r.update(end="closed by the server (EOF)", ended_at=self.now())
                            return
                        buf += chunk
                    if buf[: len(msg)] != msg:
                        r.update(end="wrong echo", ended_at=self.now())
                        return
                    buf = buf[len(msg):]
                    r["echoes"] = n
            except socket.timeout:
                r.update(end="timeout", ended_at=self.now())
            except ConnectionResetError:
                r.update(end="reset by the server", ended_at=self.now())
            except BrokenPipeError:
                r.update(end="broken pipe", ended_at=self.now())
            except OSError as e:
                r.update(end=f"error {e.errno}: {e.strerror}", ended_at=self.now())


def stream(args):
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    t0 = time.monotonic()
    longs = [LongConnection(args.host, args.port, args.timeout, t0, stop) for _ in range(args.long)]
    for c in longs:
        c.start()

    lock = threading.Lock()
    failures, per_second = [], {}
    names = Counter()
    sem = threading.Semaphore(args.max_in_flight)
    workers = []

    def fire(at):
        try:
            name, err, lport = one_connection(args.host, args.port, args.timeout)
            sec = int(at)
            with lock:
                slot = per_second.setdefault(sec, Counter())
                if err:
                    failures.append({"at": round(at, 2), "reason": err, "port": lport})
                    slot["failed"] += 1
                else:
                    names[name] += 1
                    slot[name] += 1
        finally:
            sem.release()

    def write_progress():
        with lock:
            snap = {"seconds": round(time.monotonic() - t0, 2), "sent": sent,
                    "ok": sum(names.values()), "failed": len(failures),
                    "long_open": sum(1 for c in longs
                                     if c.result["served_by"] and c.result["end"] == "open"),
                    "long_ended": sum(1 for c in longs if c.result["ended_at"] is not None)}
        tmp = args.progress_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(snap, f)
        os.replace(tmp, args.progress_file)

    interval = 1.0 / args.rate
    next_at = t0
    sent = 0
    progress_at = t0
    while not stop.is_set():
        now = time.monotonic()
        if args.progress_file and now >= progress_at:
            write_progress()
            progress_at = now + PROGRESS_INTERVAL
        if now - t0 >= args.max_seconds or (args.stop_file and os.path.exists(args.stop_file)):
            break
        if now < next_at:
            time.sleep(min(next_at - now, 0.05))
            continue
        next_at += interval
        if not sem.acquire(timeout=args.timeout):
            with lock:
                failures.append({"at": round(now - t0, 2), "reason": "client saturated"})
            continue
        t = threading.Thread(target=fire, args=(now - t0,), daemon=True)
        t.start()
        workers.append(t)
        sent += 1
        if len(workers) > 256:
            workers = [w for w in workers if w.is_alive()]
    stop.set()
    for w in workers:
        w.join(args.timeout + 1)
    for c in longs:
        c.join(args.timeout + 2)
    if args.progress_file:
        write_progress()
    return {
        "seconds": round(time.monotonic() - t0, 2),
        "sent": sent,
        "ok": sum(names.values()),
        "failed": len(failures),
        "by_name": dict(names),
        "failures": failures[:200],
        "per_second": {str(k): dict(v) for k, v in sorted(per_second.items())},
        "long": [c.result for c in longs],
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    for mode in ("split", "stream"):
        s = sub.add_parser(mode)
        s.add_argument("host")
        s.add_argument("port", type=int)
        s.add_argument("--timeout", type=float, default=5.0, help="per socket operation (s)")
        if mode == "split":
            s.add_argument("--count", type=int, required=True)
            s.add_argument("--parallel", type=int, default=8)
        else:
            s.add_argument("--rate", type=float, default=50.0, help="new connections a second")
            s.add_argument("--max-seconds", type=float, required=True)
            s.add_argument("--long", type=int, default=0, help="long connections held open")
            s.add_argument("--stop-file")
            s.add_argument("--progress-file", help="rewritten with the counts so far")
            s.add_argument("--max-in-flight", type=int, default=64)
    args = p.parse_args()
    if args.mode == "split" and not 0 < args.count <= 1_000_000:
        p.error("--count must be 1..1000000")
    if args.mode == "stream" and not (0 < args.rate <= 2000 and 0 < args.max_seconds <= 3600):
        p.error("--rate must be 0..2000 and --max-seconds 0..3600")
    result = split(args) if args.mode == "split" else stream(args)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
