#!/usr/bin/env python3
"""Samples of an idle node's perf profile by cause (docs/SCALING.md "Idle CPU: the profile"): a sample counts for a
cause when a frame on its stack matches the cause's regex (GC: by thread name). 999 Hz over 30 s: samples / 300 is
% of one core.   python3 causes.py PERF_SCRIPT_TXT [...]    (bench/results/scale/idle-profile/causes.txt)"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from top_stacks import read_perf
B = [("Kestrel heartbeat (walks every connection each second)", r"Heartbeat::OnHeartbeat"),
     ("keep-alive sweep (SweepOnce)", r"MuxKeepAliveSweep::SweepOnce"),
     ("session entities (load reports)", r"Connect\.Actors\.Sessions"),
     ("link actors", r"Connect\.Actors\.Links"),
     ("Akka scheduler (HashedWheelTimer)", r"HashedWheelTimerScheduler"),
     ("Akka mailbox runs (all actors)", r"Mailbox::Execute"),
     ("frame receive path (Kestrel socket -> WebSocket -> mux read loop)", r"DoReceive|Http1UpgradeMessageBody|ReadLoopAsync|ManagedWebSocket\+<Receive"),
     ("frame send path (mux write loop -> WebSocket -> socket)", r"MuxSendScheduler|DoSend|ManagedWebSocket\+<Send|SendFrame"),
     ("pinned block allocation (Kestrel pool)", r"AllocateUninitializedArray"),
     ("GC threads", r"^$"),
]
for path in sys.argv[1:]:
    st = read_perf(path); tot = sum(st.values()) or 1
    print(f"{path}: {tot} samples (~{tot/30/10:.2f} % of a core)")
    for name, rx in B:
        r = re.compile(rx)
        if name == "GC threads":
            n = sum(w for s, w in st.items() if 'GC' in s[0] or 'BGC' in s[0])
        else:
            n = sum(w for s, w in st.items() if any(r.search(f) for f in s[1:]))
        print(f"   {n:5d} {n/tot*100:5.1f}%  {name}")
    th = {}
    for s, w in st.items(): th[s[0]] = th.get(s[0], 0) + w
    print("   threads: " + ", ".join(f"{k} {v/tot*100:.0f}%" for k, v in sorted(th.items(), key=lambda x: -x[1])[:6]))
