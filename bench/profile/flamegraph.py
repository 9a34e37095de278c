#!/usr/bin/env python3
"""Turns a profile into a self-contained flame graph SVG (no FlameGraph/inferno on this machine, so this is ours).

    python3 flamegraph.py perf   PERF_SCRIPT_TXT  OUT.svg  "title"   # output of `perf script` (CPU samples, kernel + JIT frames)
    python3 flamegraph.py speedscope FILE.speedscope.json OUT.svg "title"   # `dotnet-trace convert --format speedscope`

perf input: each sample is weighted 1 (a fixed sampling rate, so width = CPU time). speedscope input (EventPipe's
sample profiler samples every thread, running or blocked): width = sampled time, and stacks whose leaf frame is a
known wait (epoll, semaphores, Monitor.Wait, sleeping timers) are dropped, so what is left approximates CPU time
in managed code. Also prints the top leaf frames ("self" time) to stdout.
"""
import collections
import html
import json
import re
import sys

WAIT_FRAMES = re.compile(
    r"WaitForSocketEvents|LowLevelLifoSemaphore|LowLevelMonitor|WaitHandle\.Wait|Monitor\.Wait|Thread\.Sleep|"
    r"WaitOneNoCheck|WaitForSignal|SpinWait|Interop\+Sys\.Poll|epoll_wait|WaitNative|Wait\(|UNMANAGED_CODE_TIME|CPU_TIME_UNKNOWN"
)


def clean(frame):
    frame = re.sub(r"\[[^\]]*\]$", "", frame).strip()  # perf-map suffixes such as [OptimizedTier1]
    frame = re.sub(r"\(.*\)$", "", frame) if len(frame) > 160 else frame
    return frame or "?"


def read_perf(path):
    stacks = collections.Counter()
    comm, frames = None, []
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                if comm is not None:
                    stacks[tuple([comm] + [clean(x) for x in reversed(frames)])] += 1
                comm, frames = None, []
                continue
            if not line.startswith((" ", "\t")):
                comm = line.split()[0]
                frames = []
            else:
                parts = line.strip().split(" ", 1)
                sym = parts[1] if len(parts) > 1 else parts[0]
                sym = re.sub(r"\+0x[0-9a-f]+", "", sym)
                sym = re.sub(r" \(([^)]*)\)$", lambda m: "" if m.group(1).startswith("/tmp/perf-") else " [" + m.group(1).rsplit("/", 1)[-1] + "]", sym)
                frames.append(sym)
    if comm is not None:
        stacks[tuple([comm] + [clean(x) for x in reversed(frames)])] += 1
    return stacks


PSEUDO = re.compile(r"^(Process\d+ |\(Non-Activities\)|Threads$|Thread \(\d+\)$)")


def managed_cpu(stacks):
    """TraceEvent marks each sample's leaf CPU_TIME (running) or another *_TIME; keep the running ones, drop the markers."""
    has_cpu = any(stack and stack[-1] == "CPU_TIME" for stack in stacks)
    result = collections.Counter()
    for stack, weight in stacks.items():
        if has_cpu and (not stack or stack[-1] != "CPU_TIME"):
            continue
        kept = tuple(f for f in stack if f != "CPU_TIME" and not PSEUDO.match(f))
        if kept:
            result[kept] += weight
    return result


def read_speedscope(path):
    data = json.load(open(path))
    names = [clean(fr["name"]) for fr in data["shared"]["frames"]]
    stacks = collections.Counter()
    for profile in data["profiles"]:
        if profile.get("type") == "sampled":
            for sample, weight in zip(profile["samples"], profile["weights"]):
                stack = tuple(names[i] for i in sample)
                if stack and not WAIT_FRAMES.search(stack[-1]):
                    stacks[stack] += weight
            continue
        stack, last = [], None
        for event in profile["events"]:
            at = event["at"]
            if last is not None and stack and (names[stack[-1]] == "CPU_TIME" or not WAIT_FRAMES.search(names[stack[-1]])):
                stacks[tuple(names[i] for i in stack)] += at - last
            last = at
            if event["type"] == "O":
                stack.append(event["frame"])
            elif stack:
                # Close events name the frame they close; pop down to it.
                while stack and stack.pop() != event["frame"]:
                    pass
    return managed_cpu(stacks)


def build_tree(stacks):
    root = {"name": "all", "value": 0, "children": {}}
    for stack, weight in stacks.items():
        root["value"] += weight
        node = root
        for frame in stack:
            child = node["children"].setdefault(frame, {"name": frame, "value": 0, "children": {}})
            child["value"] += weight
            node = child
    return root


def color(name):
    h = sum(ord(c) for c in name) % 60
    if "[kernel" in name or name.startswith(("__", "_copy", "tcp_", "sock_", "ip_", "do_syscall", "entry_SYSCALL")):
        return f"rgb(230,{120 + h},{40})"  # kernel: orange
    if "Connect." in name:
        return f"rgb({60 + h},{150 + h // 2},230)"  # ours: blue
    if name.startswith("System.") or name.startswith("Microsoft."):
        return f"rgb({40 + h},{170 + h // 2},{90})"  # framework: green
    return f"rgb(220,{90 + h},{90 + h})"  # native/other: red


def render(root, out, title, width=1600, row=16):
    depth = [0]

    def walk(node, level):
        depth[0] = max(depth[0], level)
        for child in node["children"].values():
            walk(child, level + 1)

    walk(root, 0)
    height = (depth[0] + 1) * row + 60
    total = root["value"] or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" font-size="11">',
        f'<rect width="100%" height="100%" fill="#fcfcf4"/>',
        f'<text x="10" y="20" font-size="15">{html.escape(title)}</text>',
        f'<text x="10" y="38" fill="#555">width = share of samples; hover a box for its name and share. Orange: kernel, blue: Connect, green: .NET, red: other native.</text>',
    ]

    def draw(node, x, level):
        w = node["value"] / total * (width - 20)
        if w < 0.3:
            return
        y = height - (level + 1) * row - 4
        share = node["value"] / total * 100
        label = html.escape(node["name"])
        parts.append(
            f'<g><title>{label} ({share:.2f}%)</title><rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 1}" fill="{color(node["name"])}" rx="1"/>'
        )
        if w > 40:
            chars = int(w / 6.6)
            text = node["name"] if len(node["name"]) <= chars else node["name"][: max(chars - 2, 0)] + ".."
            parts.append(f'<text x="{x + 2:.1f}" y="{y + row - 4}">{html.escape(text)}</text>')
        parts.append("</g>")
        cx = x
        for child in sorted(node["children"].values(), key=lambda c: c["name"]):
            draw(child, cx, level + 1)
            cx += child["value"] / total * (width - 20)

    draw(root, 10, 0)
    parts.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(parts))


def main():
    kind, source, out, title = sys.argv[1:5]
    stacks = read_perf(source) if kind == "perf" else read_speedscope(source)
    render(build_tree(stacks), out, title)
    leaves = collections.Counter()
    for stack, weight in stacks.items():
        leaves[stack[-1]] += weight
    total = sum(leaves.values()) or 1
    print(f"{out}: {sum(stacks.values())} samples")
    for name, weight in leaves.most_common(25):
        print(f"  {weight / total * 100:5.1f}%  {name}")


if __name__ == "__main__":
    main()
