#!/usr/bin/python3
"""Writes the seed-* inputs of tests/fuzz/corpus/fuzz_events/ (the unit tests' chain cases and a few
member-event and delivery sequences) in the byte encoding of tests/fuzz/fuzz_events.c.
Run: tests/fuzz/make_events_seeds.py tests/fuzz/corpus/fuzz_events"""
import os
import sys
out = sys.argv[1]
def enc(idn, freq=0, orig=0, plan=0, member=0, source=0, ed=0, owed=0, d=10, t=60):
    return bytes([0, idn + 8 * freq, orig | plan << 3 | member << 4 | source << 5 | ed << 6 | owed << 7, d, t])
def mem(idn, member=0, status=0, b=10, c=0):
    return bytes([7, idn | member << 4 | status << 5, b, c])
def dlv(idn, b=5):
    return bytes([6, idn, b])
O, R, V = 0, 1, 2
seeds = {
 "self_reference": [enc(0), enc(1, R, 0, d=2), enc(1, R, 1, d=2)],
 "original_resent_as_replacement": [enc(0), enc(1), enc(2, V, 1), enc(1, R, 0)],
 "replacement_resent_as_original": [enc(2, V, 1), enc(1, R, 0), enc(1), enc(0)],
 "corrected_original_id": [enc(0), enc(3, d=0, t=200), enc(1, R, 3), enc(2, V, 1), enc(1, R, 0)],
 "cycle": [enc(0), enc(1, R, 0), enc(2, R, 1), enc(1, R, 2, d=0), enc(0, R, 2)],
 "owed_alerts": [enc(0, owed=1, t=10), enc(1, R, 0, owed=1, d=5, t=20), enc(3, owed=1, d=40, t=30),
                 enc(4, d=0, t=250), enc(2, V, 3, t=251), enc(5, d=100, t=200)],
 "caw7_visits": [mem(i, c=10 * i) for i in range(6)] + [enc(0, ed=1, d=20), enc(1, R, 0, ed=1, d=30),
                 enc(2, V, 1), enc(1, O, ed=1, d=30), bytes([9, 3])],
 "deliveries": [dlv(0), dlv(1, 0x21), dlv(0, 0x80), dlv(2, 0x15), bytes([9, 1])],
}
for name, evs in seeds.items():
    for order in (0, 1):
        with open(os.path.join(out, f"seed-{name}_{order}"), "wb") as f:
            f.write(bytes([order]) + b"".join(evs))
