"""ca_as.py — a CA client (pyepics, hence libca) in a process of its own, as someone else.

test_access.py runs it with preload_ca_as.so in LD_PRELOAD (see that file): GUARD_CA_USER is
the CA user name libca sends, GUARD_CA_SOURCE the address its circuits come from. It reads one
JSON command a line on stdin and answers one JSON line each:

  {"op": "access", "name": N}                   -> {"read": bool, "write": bool}
  {"op": "wait_write", "name": N, "want": bool}  -> {"write": bool} once it is want (5 s at most)
  {"op": "put", "name": N, "value": V}           -> {"ok": bool, "error": text}
"""
import json
import sys
import time

from epics import ca


def main():
    chids = {}
    for line in sys.stdin:
        c = json.loads(line)
        name = c["name"]
        if name not in chids:
            ch = ca.create_channel(name, connect=False, auto_cb=False)
            if not ca.connect_channel(ch, timeout=5):
                print(json.dumps({"error": "not connected: " + name}), flush=True)
                continue
            chids[name] = ch
        ch = chids[name]
        ca.poll()
        if c["op"] == "access":
            r = {"read": bool(ca.read_access(ch)), "write": bool(ca.write_access(ch))}
        elif c["op"] == "wait_write":
            end = time.monotonic() + 5
            while bool(ca.write_access(ch)) != c["want"] and time.monotonic() < end:
                ca.poll(0.02, 0.05)
            r = {"write": bool(ca.write_access(ch))}
        elif c["op"] == "put":
            try:
                r = {"ok": ca.put(ch, c["value"], wait=True, timeout=5) == 1}
            except Exception as e:  # libca refuses a put without write access itself
                r = {"ok": False, "error": str(e)}
        else:
            r = {"error": "unknown op"}
        print(json.dumps(r), flush=True)
    ca.finalize_libca()


if __name__ == "__main__":
    main()
