"""Warm cell latency of the rask Jupyter kernel: the time from an execute
request to its reply, over 15 cells of each kind, through jupyter_client.

Needs the kernel installed (`cargo run --release -- kernel install`) and
jupyter_client; run with `python benches/kernel_latency.py`."""

import statistics, sys, time
from jupyter_client.manager import start_new_kernel
km, kc = start_new_kernel(kernel_name="rask", startup_timeout=600)
def run(code):
    t = time.perf_counter()
    msg_id = kc.execute(code)
    reply = kc.get_shell_msg(timeout=600)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=600)
    assert reply["content"]["status"] == "ok", reply["content"]
    return time.perf_counter() - t
first = run("1 + 1")
run("%cluster local 2")
cells = {
    "expression": lambda i: f"{i} * 2",
    "let binding": lambda i: f"let v{i % 3} = vec![{i}; 10]; v{i % 3}.len()",
    "rask compute": lambda i: f"rask::array::arange(0i64, 1000, 1, 100).unwrap().sum().unwrap().compute_scalar::<i64>(&client).unwrap() + {i}",
}
for name, make in cells.items():
    times = [run(make(i)) for i in range(15)]
    print(f"{name}: median {statistics.median(times):.2f} s, min {min(times):.2f}, max {max(times):.2f} (15 cells)")
print(f"first cell after start: {first:.2f} s")
km.shutdown_kernel(now=True)
