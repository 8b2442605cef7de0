#!/usr/bin/env python3
# memscan.py PID NEEDLE: prints how often NEEDLE occurs in the readable memory of process PID
# (needs root or ptrace rights), and on stderr where, with the bytes around each hit: the bytes
# before a hit usually tell whose copy it is (an APDU hex dump, an environment variable, ...).
import re, sys
pid, needle = sys.argv[1], sys.argv[2].encode()
hits = 0
with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
    for line in maps:
        m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
        start, end, perms = int(m[1], 16), int(m[2], 16), m[3]
        if perms[0] != "r" or "[vvar]" in line or "[vsyscall]" in line:
            continue
        # Terabyte reservations (AddressSanitizer's shadow memory) hold no data of ours and cannot
        # be read in one piece; the processes scanned here use far less than 1 GiB.
        if end - start > (1 << 30):
            continue
        try:
            mem.seek(start)
            data = mem.read(end - start)
        except (OSError, ValueError):
            continue
        n = data.count(needle)
        i = data.find(needle)
        while i >= 0:
            print(f"  at {start+i:x}: before={data[max(0,i-24):i].hex()} after={data[i+len(needle):i+len(needle)+8].hex()}", file=sys.stderr)
            i = data.find(needle, i + 1)
        if n:
            print(f"{n} in {line.strip()}", file=sys.stderr)
        hits += n
print(hits)
