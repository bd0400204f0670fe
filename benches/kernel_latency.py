"""The rask Jupyter kernel's latencies, through jupyter_client:

- kernel start to first result: from starting the kernel process to the
  reply of its first cell;
- warm cell latency: from an execute request to its reply, 15 cells each;
- an op defined in a cell to its results on worker processes: from the
  op-defining cell's request to the reply of a cell mapping it over 1,000
  inputs, on `%cluster local 2 --processes` (the first op, then redefinitions).

Needs the kernel installed (`cargo run --release -- kernel install`) and
jupyter_client; run with `python benches/kernel_latency.py`."""

import statistics
import time

from jupyter_client.manager import start_new_kernel

started = time.perf_counter()
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
to_first_result = time.perf_counter() - started
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
print(f"kernel start to first result: {to_first_result:.2f} s")

run("%cluster local 2 --processes")
op_times = []
for i in range(6):
    define = f"rask::op! {{ pub fn score(x: i64) -> i64 {{ x * {i + 1} }} }}"
    use = "client.gather(&client.map(score, 0..1000i64).unwrap()).unwrap().iter().sum::<i64>()"
    defined = run(define)
    used = run(use)
    op_times.append(defined + used)
    print(f"  op {i}: define {defined:.2f} s + map {used:.2f} s")
print(f"op defined in a cell to its results on 2 worker processes: first {op_times[0]:.2f} s, "
      f"then median {statistics.median(op_times[1:]):.2f} s (min {min(op_times[1:]):.2f}, max {max(op_times[1:]):.2f}, 5 redefinitions)")
run("%cluster down")
km.shutdown_kernel(now=True)
