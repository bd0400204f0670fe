"""A notebook run through nbclient on the rask kernel: the cluster magics on
an in-process cluster and on scheduler + worker processes, %status / %scale /
%time / %cluster down, `client` and an array used across cells and across a
panic, rich array output. Outputs are checked, not just "it ran"."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from notebook_outputs import errors_of, html_of, run_notebook, text_of  # noqa: E402

# The sum of 0..1000 on the cells' `client`, from an array an earlier cell made.
SUM = "a.sum().unwrap().compute_scalar::<i64>(&client).unwrap()"


class ClusterMagicsTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        sources = [
            "%cluster local 2",
            "let a = rask::array::arange(0i64, 1000, 1, 100).unwrap();",
            SUM,
            'panic!("boom in a cell")',
            "%status",
            "%cluster local 2 --processes",
            "%scale 3",
            "%time\n" + SUM,
            "client.workers().unwrap().len()",
            "%cluster down",
            "%cluster local two",
            # No worker process outlives `%cluster down` (pgrep exits 1: none found).
            'std::process::Command::new("pgrep").args(["-f", "kernel-worker-"]).status().unwrap().code()',
            # A lazy array as a cell's result: its chunk table and SVG.
            "rask::array::ones(&[100, 100], 25, rask::array::DType::F64).unwrap()",
            # `client` with no cluster attached: a clear error.
            "client.workers().unwrap().len()",
            # The dashboard's link, from the scheduler file of a cluster of processes.
            "%cluster local 1 --processes",
            "%dashboard",
            "%cluster down",
        ]
        cls.cells = run_notebook(sources)

    def test_an_in_process_cluster_shows_its_two_workers(self):
        self.assertIn("workers: 2", text_of(self.cells[0]))
        self.assertIn("<table>", html_of(self.cells[0]))

    def test_client_computes_an_array_from_an_earlier_cell(self):
        self.assertEqual(text_of(self.cells[2]).strip(), "499500")

    def test_a_panic_is_an_error_and_the_kernel_carries_on(self):
        errors = errors_of(self.cells[3])
        self.assertEqual(len(errors), 1, self.cells[3]["outputs"])
        self.assertEqual(errors[0]["ename"], "Panic")
        self.assertIn("boom in a cell", errors[0]["evalue"])
        # header row, two workers, totals: the cluster survived the panic
        self.assertEqual(html_of(self.cells[4]).count("<tr>"), 4)

    def test_a_cluster_of_processes_starts_scales_and_computes(self):
        self.assertIn("workers: 2", text_of(self.cells[5]))
        self.assertIn("kernel-worker-0", html_of(self.cells[5]))
        self.assertIn("workers: 3", text_of(self.cells[6]))
        timed = text_of(self.cells[7])
        self.assertIn("Wall time:", timed)
        # the array made before the panic, on the new cluster's `client`
        self.assertIn("499500", timed)
        self.assertEqual(text_of(self.cells[8]).strip(), "3")
        self.assertIn("The cluster is down", text_of(self.cells[9]))

    def test_a_bad_magic_says_what_is_wrong(self):
        self.assertIn("UsageError", text_of(self.cells[10]))
        self.assertIn("two", text_of(self.cells[10]))

    def test_cluster_down_stops_the_worker_processes(self):
        self.assertEqual(text_of(self.cells[11]).strip(), "Some(1)")

    def test_an_array_shows_its_chunk_table_and_picture(self):
        html = html_of(self.cells[12])
        self.assertIn("<table", html)
        self.assertIn("<svg", html)
        self.assertIn("100", text_of(self.cells[12]))

    def test_client_without_a_cluster_is_a_clear_error(self):
        self.assertIn("no cluster is attached", text_of(self.cells[13]))

    def test_dashboard_links_to_the_schedulers_status_page(self):
        link = text_of(self.cells[15]).strip()
        # The kernel's clusters of processes have a token: the link carries it.
        self.assertRegex(link, r"^http://127\.0\.0\.1:\d+/status\?token=[0-9a-f]+$")
        self.assertIn(f'href="{link}"', html_of(self.cells[15]))


if __name__ == "__main__":
    unittest.main()
