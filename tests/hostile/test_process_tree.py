"""bench/process_tree.py, which the benches and tests/hostile/measure.py use to measure a run with
the workers it forks: CPU and memory of forked children are counted, not only the parent's."""

from __future__ import annotations

import json
import subprocess
import sys

from bench.process_tree import run_tree

MB = 1 << 20
CHILD_MB = 64
# Two forked children, each touching CHILD_MB of its own pages and spinning on the CPU while the
# parent only waits; each child reports the CPU seconds it used (its own reading, not ours).
FORKING = f"""
import json, os, time
def child():
    block = bytearray({CHILD_MB * MB})
    for i in range(0, len(block), 4096):
        block[i] = 1
    spin_until = time.process_time() + 0.3
    while time.process_time() < spin_until:
        pass
    time.sleep(0.3)  # held while the sampler looks
    return time.process_time()
reads, writes = [], []
for _ in range(2):
    r, w = os.pipe()
    if os.fork() == 0:
        os.write(w, str(child()).encode())
        os._exit(0)
    reads.append(r)
    os.close(w)
children = [float(os.read(r, 64)) for r in reads]
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
print(json.dumps(children))
"""


def test_forked_children_count_in_cpu_and_peak_memory() -> None:
    usage, done = run_tree([sys.executable, "-c", FORKING], stdout=subprocess.PIPE, text=True)
    children_cpu = json.loads(done.stdout)
    assert usage.returncode == 0
    # Both children's CPU is in the tree's, which a parent-only reading (it only waited) would miss.
    assert usage.cpu_s >= sum(children_cpu) >= 0.6
    # Both children's pages were resident at once: each counts, shared or not.
    assert usage.peak_pss_mb >= 2 * CHILD_MB and usage.peak_rss_mb >= 2 * CHILD_MB
    assert usage.peak_hwm_mb >= usage.peak_rss_mb * 0.99


def test_a_command_writing_more_than_a_pipe_holds_is_not_blocked() -> None:
    """A run's warnings can fill a pipe (64 KiB): the tree is measured while its pipes are read."""
    chatty = "import sys; [print('warning: line', i, file=sys.stderr) for i in range(40000)]; print('done')"
    usage, done = run_tree([sys.executable, "-c", chatty], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert usage.returncode == 0 and done.stdout == "done\n"
    assert done.stderr.count("\n") == 40000
