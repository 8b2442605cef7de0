#!/usr/bin/python3
"""Process measurements for the benchmarks (resources.sh, profile.sh), from /proc only.

A PIDSPEC is "PID" (that process) or "tree:PID" (PID and every descendant, as for Postfix's master
and the smtpd, cleanup, qmgr, ... it starts).

  proc_sample.py mem PIDSPEC            rss_kb=... pss_kb=... procs=... (now)
  proc_sample.py cpu PIDSPEC            ticks=... (utime+stime of every process, plus the cutime
                                        and cstime of the first: children it has reaped)
  proc_sample.py count PIDSPEC COMM     how many of the processes are named COMM
  proc_sample.py peak PIDSPEC -- CMD..  runs CMD, samples every 10 ms while it runs and prints
                                        peak_rss_kb=... peak_pss_kb=... hwm_kb=... (VmHWM of the
                                        first process afterwards) and CMD's exit status
  proc_sample.py idle PORT N HOLD_S     opens N SMTP sessions (greeting read, EHLO answered), prints
                                        "open=N failed=F" once all are up, holds them HOLD_S seconds
                                        (or until stdin closes) and closes them
"""
import os
import select
import socket
import subprocess
import sys
import time


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def pids(spec):
    if not spec.startswith("tree:"):
        return [int(spec)]
    root = int(spec[5:])
    kids = children_map()
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def field_kb(path, key):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def mem(spec, with_pss=True):
    ps = pids(spec)
    rss = sum(field_kb("/proc/%d/status" % p, "VmRSS:") for p in ps)
    pss = sum(field_kb("/proc/%d/smaps_rollup" % p, "Pss:") for p in ps) if with_pss else 0
    return rss, pss, len(ps)


def cpu(spec):
    total = 0
    for i, p in enumerate(pids(spec)):
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the ")": state is index 0, utime 11, stime 12, cutime 13, cstime 14
        total += int(fields[11]) + int(fields[12])
        if i == 0:
            total += int(fields[13]) + int(fields[14])
    return total


def comm_count(spec, name):
    n = 0
    for p in pids(spec):
        try:
            with open("/proc/%d/comm" % p) as f:
                n += f.read().strip() == name
        except OSError:
            pass
    return n


def peak(spec, cmd):
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak_rss = peak_pss = 0
    while child.poll() is None:
        rss, pss, _ = mem(spec)
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        time.sleep(0.01)
    first = pids(spec)[0]
    print("peak_rss_kb=%d peak_pss_kb=%d hwm_kb=%d status=%d" % (
        peak_rss, peak_pss, field_kb("/proc/%d/status" % first, "VmHWM:"), child.returncode))


def open_session(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    f = s.makefile("rb")
    for expect, send in ((b"220", b"EHLO bench.test\r\n"), (b"250", None)):
        line = f.readline()
        while line[3:4] == b"-":
            line = f.readline()
        if not line.startswith(expect):
            s.close()
            raise OSError("expected %s, got %r" % (expect.decode(), line[:80]))
        if send:
            s.sendall(send)
    return s, f


def idle(port, n, hold):
    # 32 at a time: Postfix's master starts an smtpd per connection, one after the other, and
    # opening 1000 sessions one by one takes most of a minute on 2 loaded cores.
    from concurrent.futures import ThreadPoolExecutor
    socks, failed = [], 0
    with ThreadPoolExecutor(max_workers=32) as pool:
        futures = [pool.submit(open_session, port) for _ in range(n)]
        for fut in futures:
            try:
                socks.append(fut.result())
            except OSError as e:
                failed += 1
                if failed <= 3:
                    print("session failed: %s" % e, file=sys.stderr)
    print("open=%d failed=%d" % (len(socks), failed), flush=True)
    deadline = time.monotonic() + hold
    # Hold until the deadline or until whoever reads us closes our stdin.
    while time.monotonic() < deadline:
        r, _, _ = select.select([sys.stdin], [], [], max(0, deadline - time.monotonic()))
        if r and not sys.stdin.readline():
            break
    for s, f in socks:
        try:
            s.sendall(b"QUIT\r\n")
        except OSError:
            pass
        f.close()
        s.close()


def main(argv):
    what = argv[1]
    if what == "mem":
        rss, pss, n = mem(argv[2])
        print("rss_kb=%d pss_kb=%d procs=%d" % (rss, pss, n))
    elif what == "cpu":
        print(cpu(argv[2]))
    elif what == "count":
        print(comm_count(argv[2], argv[3]))
    elif what == "peak":
        peak(argv[2], argv[argv.index("--") + 1:])
    elif what == "idle":
        idle(int(argv[2]), int(argv[3]), float(argv[4]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
