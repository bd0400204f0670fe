"""Interrupting a cell on the rask kernel, as Jupyter's "interrupt" button
does (an interrupt_request on the control socket): the cell's futures are
cancelled on the cluster, the cell ends with an `Interrupted` error, and the
session's variables and `client` survive. A cell that waits on no future has
its process stopped after the grace period instead."""

import time
import unittest

from jupyter_client.manager import start_new_kernel

# 200 half-second tasks: 50 s of work on the cluster's two worker threads.
LONG_CELL = (
    "let naps = client.map(rask::ops::builtin::sleep_then, (0..200u64).map(|i| (500u64, i))).unwrap();\n"
    "client.gather(&naps).unwrap().len()"
)


class InterruptTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.km, cls.kc = start_new_kernel(kernel_name="rask", startup_timeout=600)

    @classmethod
    def tearDownClass(cls):
        cls.kc.stop_channels()
        cls.km.shutdown_kernel(now=True)

    def run_cell(self, code, timeout=120, interrupt_when=None):
        """Runs `code`; with `interrupt_when(msg)`, interrupts the kernel at
        the first IOPub message of the cell it accepts. Returns the reply's
        content and the cell's outputs."""
        msg_id = self.kc.execute(code)
        outputs, interrupted = [], False
        deadline = time.monotonic() + timeout
        while True:
            msg = self.kc.get_iopub_msg(timeout=max(deadline - time.monotonic(), 0.1))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "status" and msg["content"]["execution_state"] == "idle":
                break
            if kind in ("stream", "execute_result", "display_data", "error"):
                outputs.append(msg)
            if interrupt_when and not interrupted and interrupt_when(msg):
                self.km.interrupt_kernel()
                interrupted = True
        while True:
            reply = self.kc.get_shell_msg(timeout=max(deadline - time.monotonic(), 0.1))
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"], outputs

    def test_an_interrupt_cancels_the_cells_futures_and_keeps_the_session(self):
        reply, _ = self.run_cell("%cluster local 2 --processes", timeout=300)
        self.assertEqual(reply["status"], "ok", reply)
        self.run_cell("let kept = 41;")

        # Interrupt once the cell shows its progress display (after a second's wait).
        started = time.monotonic()
        reply, _ = self.run_cell(
            LONG_CELL,
            interrupt_when=lambda m: m["msg_type"] == "display_data",
        )
        self.assertEqual(reply["status"], "error", reply)
        self.assertEqual(reply["ename"], "Interrupted", reply)
        self.assertRegex(reply["evalue"], r"\d+ of its futures were cancelled on the cluster")
        self.assertLess(time.monotonic() - started, 40, "the cell waited for all its work")
        self.assertTrue(any("cancelled" in line for line in reply["traceback"][1:]), reply)

        # The session's variables survive, and the cluster has dropped the
        # cancelled work: a new task does not queue behind ~45 s of naps.
        reply, outputs = self.run_cell("kept + 1")
        self.assertEqual(outputs[-1]["content"]["data"]["text/plain"], "42")
        reply, outputs = self.run_cell(
            "client.submit(rask::ops::builtin::sleep_then, (0u64, 7u64)).unwrap().result().unwrap()",
            timeout=20,
        )
        self.assertEqual(reply["status"], "ok", reply)
        self.assertEqual(outputs[-1]["content"]["data"]["text/plain"], "7")

        # A cell that waits on no future: its process is stopped after the grace.
        reply, _ = self.run_cell(
            'println!("spinning"); loop { std::hint::spin_loop(); }',
            interrupt_when=lambda m: m["msg_type"] == "stream",
        )
        self.assertEqual(reply["ename"], "Interrupted", reply)
        self.assertIn("variables are lost", reply["evalue"])
        # `client` reattaches to the same cluster in the new process.
        reply, outputs = self.run_cell("client.workers().unwrap().len()")
        self.assertEqual(outputs[-1]["content"]["data"]["text/plain"], "2")
        self.run_cell("%cluster down")


if __name__ == "__main__":
    unittest.main()
