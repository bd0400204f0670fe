"""A notebook run through nbclient on the rask kernel: the cluster magics on
an in-process cluster and on scheduler + worker processes, %status / %scale /
%time / %cluster down, a panicking cell, rich array output. Outputs are
checked, not just "it ran"."""

import unittest

import nbclient
import nbformat

# Clients made in one cell do not work from another yet (README): the
# computation runs in one cell, on a client it makes.
SUM = (
    "let c = rask::Client::local(rask::LocalCluster::new().workers(2)).unwrap();\n"
    "rask::array::arange(0i64, 1000, 1, 100).unwrap().sum().unwrap().compute_scalar::<i64>(&c).unwrap()"
)


def text_of(cell):
    """Every text output of a cell, joined."""
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif out["output_type"] in ("execute_result", "display_data"):
            parts.append(out["data"].get("text/plain", ""))
        elif out["output_type"] == "error":
            parts.append(f"{out['ename']}: {out['evalue']}")
    return "".join(parts)


def html_of(cell):
    return "".join(
        out["data"].get("text/html", "")
        for out in cell.get("outputs", [])
        if out["output_type"] in ("execute_result", "display_data")
    )


class ClusterMagicsTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        sources = [
            "%cluster local 2",
            'panic!("boom in a cell")',
            "%status",
            "%cluster local 2 --processes",
            "%scale 3",
            "%time\n" + SUM,
            "%cluster down",
            "%cluster local two",
            # No worker process outlives `%cluster down` (pgrep exits 1: none found).
            'std::process::Command::new("pgrep").args(["-f", "kernel-worker-"]).status().unwrap().code()',
            # A lazy array as a cell's result: its chunk table and SVG.
            "rask::array::ones(&[100, 100], 25, rask::array::DType::F64).unwrap()",
            # `client` from a later cell: a clear error, not a hang.
            "client.workers().unwrap().len()",
        ]
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
        client = nbclient.NotebookClient(
            nb, kernel_name="rask", timeout=600, allow_errors=True, startup_timeout=600
        )
        client.execute()
        cls.cells = nb.cells

    def test_an_in_process_cluster_shows_its_two_workers(self):
        self.assertIn("workers: 2", text_of(self.cells[0]))
        self.assertIn("<table>", html_of(self.cells[0]))

    def test_a_panic_is_an_error_and_the_kernel_carries_on(self):
        errors = [o for o in self.cells[1]["outputs"] if o["output_type"] == "error"]
        self.assertEqual(len(errors), 1, self.cells[1]["outputs"])
        self.assertEqual(errors[0]["ename"], "Panic")
        self.assertIn("boom in a cell", errors[0]["evalue"])
        # header row, two workers, totals
        self.assertEqual(html_of(self.cells[2]).count("<tr>"), 4)

    def test_a_cluster_of_processes_starts_and_scales(self):
        self.assertIn("workers: 2", text_of(self.cells[3]))
        self.assertIn("kernel-worker-0", html_of(self.cells[3]))
        self.assertIn("workers: 3", text_of(self.cells[4]))
        timed = text_of(self.cells[5])
        self.assertIn("Wall time:", timed)
        self.assertIn("499500", timed)
        self.assertIn("The cluster is down", text_of(self.cells[6]))

    def test_a_bad_magic_says_what_is_wrong(self):
        self.assertIn("UsageError", text_of(self.cells[7]))
        self.assertIn("two", text_of(self.cells[7]))

    def test_cluster_down_stops_the_worker_processes(self):
        self.assertEqual(text_of(self.cells[8]).strip(), "Some(1)")

    def test_an_array_shows_its_chunk_table_and_picture(self):
        html = html_of(self.cells[9])
        self.assertIn("<table", html)
        self.assertIn("<svg", html)
        self.assertIn("100", text_of(self.cells[9]))

    def test_client_from_a_later_cell_is_a_clear_error(self):
        self.assertIn("cannot be used from this cell yet", text_of(self.cells[10]))

if __name__ == "__main__":
    unittest.main()
