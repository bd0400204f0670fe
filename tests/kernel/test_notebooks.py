"""Every tutorial in notebooks/ runs top to bottom on the rask kernel
(nbclient, as `jupyter execute --kernel_name=rask` does), and its outputs are
checked. tests/kernel.rs starts moto's S3 server (bucket `tutorial`, its
address in the AWS_* environment) and runs this with SLURM up."""

import os
import pathlib
import sys
import unittest

import nbclient
import nbformat

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from notebook_outputs import errors_of, html_of, text_of  # noqa: E402

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[2] / "notebooks"


def execute(name):
    """Runs notebooks/NAME in a scratch directory; returns its code cells."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    scratch = pathlib.Path(os.environ.get("RASK_NOTEBOOK_DIR", "/tmp")) / name.removesuffix(".ipynb")
    scratch.mkdir(parents=True, exist_ok=True)
    client = nbclient.NotebookClient(
        nb,
        kernel_name="rask",
        timeout=600,
        startup_timeout=600,
        resources={"metadata": {"path": str(scratch)}},
    )
    client.execute()
    return [cell for cell in nb.cells if cell.cell_type == "code"]


class NotebookTests(unittest.TestCase):
    def test_every_notebook_is_tested(self):
        tested = {
            "01-delayed-and-futures.ipynb",
            "02-arrays-and-zarr.ipynb",
            "03-dataframes-from-s3.ipynb",
            "04-your-own-ops.ipynb",
            "05-slurm-adaptive.ipynb",
        }
        self.assertEqual({p.name for p in NOTEBOOKS.glob("*.ipynb")}, tested)

    def test_delayed_and_futures(self):
        cells = execute("01-delayed-and-futures.ipynb")
        self.assertIn("workers: 2", text_of(cells[0]))
        self.assertEqual(text_of(cells[2]).strip(), "13")
        self.assertEqual(text_of(cells[3]).strip(), "90")
        self.assertEqual(text_of(cells[4]).strip(), "18")
        self.assertEqual(text_of(cells[5]).strip(), "42")
        self.assertIn("<table>", html_of(cells[6]))
        self.assertIn("The cluster is down", text_of(cells[7]))

    def test_arrays_and_zarr(self):
        cells = execute("02-arrays-and-zarr.ipynb")
        self.assertIn("<svg", html_of(cells[1]))
        self.assertIn("2000", text_of(cells[1]))
        self.assertEqual(text_of(cells[2]).strip(), "true")
        self.assertEqual(text_of(cells[3]).strip(), "true")
        self.assertEqual(text_of(cells[4]).strip(), "true")

    def test_dataframes_from_s3(self):
        cells = execute("03-dataframes-from-s3.ipynb")
        self.assertEqual(errors_of(cells[1]), [])
        self.assertIn("fare", html_of(cells[2]))
        self.assertIn("4", text_of(cells[2]))
        self.assertEqual(text_of(cells[3]).strip(), "100000")
        # passengers 3 and 4 of every 5 trips: 40,000 trips over 4 vendors
        self.assertIn("10000", text_of(cells[4]))
        # a computed frame shows as an HTML table with its shape
        self.assertIn("4 rows × 3 columns", html_of(cells[4]))
        self.assertEqual(text_of(cells[5]).strip(), "4")

    def test_your_own_ops(self):
        cells = execute("04-your-own-ops.ipynb")
        self.assertIn("kernel-worker-0", html_of(cells[0]))
        self.assertIn("ops score sent to the cluster's workers (2 loaded it", text_of(cells[1]))
        self.assertEqual(text_of(cells[2]).strip(), str(sum(x * x + 1 for x in range(1000))))
        self.assertEqual(text_of(cells[4]).strip(), str(sum(2 * x for x in range(1000))))
        self.assertEqual(text_of(cells[6]).strip(), "true")

    def test_slurm_adaptive(self):
        cells = execute("05-slurm-adaptive.ipynb")
        # adaptive from zero: no worker until there is work
        self.assertIn("workers: 0", text_of(cells[1]))
        self.assertEqual(text_of(cells[2]).strip(), str(sum(range(1_000_000))))
        # then workers that SLURM jobs started (named after their job)
        self.assertIn("rask-worker-", text_of(cells[3]))
        self.assertIn("<table>", html_of(cells[3]))
        self.assertIn("The cluster is down", text_of(cells[4]))


if __name__ == "__main__":
    unittest.main()
