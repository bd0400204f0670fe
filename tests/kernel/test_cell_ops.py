"""Ops defined in notebook cells, run by stock `rask worker` processes: the
kernel builds the cells' ops into a plugin and uploads it. A notebook through
nbclient: `%cluster local 2 --processes`, a cell defining an op, a cell mapping
it over 1,000 inputs, a cell redefining it, a cell that panics, then `client`
again; and the same op on an in-process cluster. Outputs are checked."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from notebook_outputs import errors_of, run_notebook, text_of  # noqa: E402

MAP_SUM = (
    "let futures = client.map(score, 0..1000i64).unwrap();\n"
    "futures.iter().map(|f| f.result().unwrap()).sum::<i64>()"
)


class CellOpsTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        sources = [
            "%cluster local 2 --processes",
            # A helper item and an op that uses it (no `pub`: the kernel adds it).
            "fn offset() -> i64 { 1 }\n"
            "rask::op! {\n    /// x squared, plus one.\n    fn score(x: i64) -> i64 { x * x + offset() }\n}",
            MAP_SUM,
            "rask::op! { pub fn score(x: i64) -> i64 { 2 * x } }",
            MAP_SUM,
            'panic!("boom after the ops")',
            # `client` and the redefined op after the panic.
            "client.map(score, [21i64]).unwrap()[0].result().unwrap()",
            # The workers ran the op: no worker binary knows it.
            "client.workers().unwrap().len()",
            # A task that fails on a worker: its key, the worker and the message.
            'rask::op! { pub fn picky(x: i64) -> i64 { assert!(x != 3, "three is not allowed"); x } }',
            "client.map(picky, 0..5i64).unwrap()[3].result().unwrap()",
            # The same op on an in-process cluster (the cells' own code).
            "%cluster local 2",
            "client.map(score, [4i64]).unwrap()[0].result().unwrap()",
            # A wait over a second: a progress display, updated in place.
            "rask::op! { pub fn slow(x: i64) -> i64 { std::thread::sleep(std::time::Duration::from_millis(10)); x } }\n"
            "let futures = client.map(slow, 0..400i64).unwrap();\n"
            "client.gather(&futures).unwrap().len()",
        ]
        cls.cells = run_notebook(sources)

    def test_defining_an_op_uploads_it_to_the_workers(self):
        self.assertEqual(errors_of(self.cells[1]), [])
        self.assertIn("ops score sent to the cluster's workers (2 loaded it", text_of(self.cells[1]))

    def test_the_op_maps_over_1000_inputs_on_worker_processes(self):
        # sum of x^2 + 1 for x in 0..1000
        self.assertEqual(text_of(self.cells[2]).strip(), str(sum(x * x + 1 for x in range(1000))))

    def test_a_redefined_op_takes_effect(self):
        self.assertIn("2 loaded it", text_of(self.cells[3]))
        self.assertEqual(text_of(self.cells[4]).strip(), str(sum(2 * x for x in range(1000))))

    def test_after_a_panic_client_and_the_op_still_work(self):
        errors = errors_of(self.cells[5])
        self.assertEqual(len(errors), 1)
        self.assertEqual(errors[0]["ename"], "Panic")
        self.assertEqual(text_of(self.cells[6]).strip(), "42")
        self.assertEqual(text_of(self.cells[7]).strip(), "2")

    def test_a_long_wait_shows_progress_in_the_cell(self):
        shown = [o for o in self.cells[12]["outputs"] if o["output_type"] == "display_data"]
        self.assertEqual(len(shown), 1, self.cells[12]["outputs"])
        # updated in place to the end: every task done
        self.assertIn("<progress", shown[0]["data"]["text/html"])
        self.assertIn("400/400 tasks (100%)", shown[0]["data"]["text/plain"])
        self.assertIn("400", text_of(self.cells[12]))

    def test_a_failed_task_names_its_key_and_worker(self):
        errors = errors_of(self.cells[9])
        self.assertEqual(len(errors), 1, self.cells[9]["outputs"])
        self.assertRegex(
            errors[0]["evalue"],
            r"task picky-\S+ failed on worker kernel-worker-\d: .*three is not allowed",
        )

    def test_an_in_process_cluster_runs_the_same_op(self):
        self.assertIn("in-process", text_of(self.cells[10]))
        self.assertEqual(text_of(self.cells[11]).strip(), "8")


if __name__ == "__main__":
    unittest.main()
