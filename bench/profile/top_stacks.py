#!/usr/bin/env python3
"""Top-stacks tables of a perf profile (the text flame graphs cannot give): where the samples are, by thread, by frame
(inclusive: the frame is anywhere on the stack; exclusive: the frame is the leaf) and by whole stack.

    python3 top_stacks.py PERF_SCRIPT_TXT [TITLE] [--match REGEX ...]

Each sample weighs 1 (perf samples at a fixed rate, so a share of samples is a share of CPU time). --match REGEX adds
one line per regex: the share of samples whose stack holds a frame matching it (a "bucket", e.g. 'Akka\\.' or
'TunnelMux'), so a cost can be named by the code that causes it, not only by the leaf it ends in.
"""
import collections
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from flamegraph import clean  # noqa: E402

# A sample's first line: "COMM PID[/TID] [CPU] TIME: PERIOD EVENT:"; .NET thread names hold spaces (".NET TP Worker").
HEADER = re.compile(r"^(.*?)\s+\d+(?:/\d+)?\s+(?:\[\d+\]\s+)?\d+\.\d+:")


def read_perf(path):
    """Like flamegraph.read_perf, with the whole thread name (perf comm) as the first element of each stack."""
    stacks = collections.Counter()
    comm, frames = None, []

    def flush():
        if comm is not None:
            stacks[tuple([comm] + [clean(x) for x in reversed(frames)])] += 1

    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                flush()
                comm, frames = None, []
                continue
            if not line.startswith((" ", "\t")):
                m = HEADER.match(line)
                comm = m.group(1) if m else line.split()[0]
                frames = []
            else:
                parts = line.strip().split(" ", 1)
                sym = parts[1] if len(parts) > 1 else parts[0]
                sym = re.sub(r"\+0x[0-9a-f]+", "", sym)
                sym = re.sub(r" \(([^)]*)\)$", lambda m: "" if m.group(1).startswith("/tmp/perf-") else " [" + m.group(1).rsplit("/", 1)[-1] + "]", sym)
                frames.append(sym)
    flush()
    return stacks


def main():
    args = sys.argv[1:]
    matches = []
    while "--match" in args:
        i = args.index("--match")
        matches.append(args[i + 1])
        del args[i:i + 2]
    source = args[0]
    title = args[1] if len(args) > 1 else source
    stacks = read_perf(source)
    total = sum(stacks.values()) or 1
    threads = collections.Counter()
    inclusive = collections.Counter()
    exclusive = collections.Counter()
    for stack, weight in stacks.items():
        threads[stack[0]] += weight
        exclusive[stack[-1]] += weight
        for frame in set(stack[1:]):
            inclusive[frame] += weight
    pct = lambda n: f"{n / total * 100:5.1f}%"
    print(f"# {title}")
    print(f"# {total} samples")
    print("\n## by thread (perf comm)")
    for name, n in threads.most_common(15):
        print(f"  {pct(n)}  {name}")
    if matches:
        print("\n## buckets (samples with a matching frame anywhere on the stack)")
        for regex in matches:
            r = re.compile(regex)
            n = sum(w for s, w in stacks.items() if any(r.search(f) for f in s[1:]))
            print(f"  {pct(n)}  {regex}")
    print("\n## inclusive (frame anywhere on the stack)")
    for name, n in inclusive.most_common(45):
        print(f"  {pct(n)}  {name}")
    print("\n## exclusive (leaf frame)")
    for name, n in exclusive.most_common(30):
        print(f"  {pct(n)}  {name}")
    print("\n## top stacks (thread; last 14 frames, leaf last)")
    for stack, n in stacks.most_common(20):
        frames = list(stack[1:])
        shown = (["..."] if len(frames) > 14 else []) + frames[-14:]
        print(f"  {pct(n)}  [{stack[0]}]")
        for f in shown:
            print(f"           {f[:150]}")


if __name__ == "__main__":
    main()
