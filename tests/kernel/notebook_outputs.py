"""Running a notebook on the rask kernel through nbclient, and reading its
cells' outputs (shared by the notebook tests)."""

import nbclient
import nbformat


def run_notebook(sources):
    """Executes cells of `sources` on the `rask` kernel (errors allowed, as a
    notebook run by hand would carry on); returns the executed cells."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    client = nbclient.NotebookClient(
        nb, kernel_name="rask", timeout=600, allow_errors=True, startup_timeout=600
    )
    client.execute()
    return nb.cells


def is_progress(out):
    """Whether an output is rask's progress display (shown when a cell waits
    over a second for its work, so present or not depending on speed)."""
    return out["output_type"] == "display_data" and out["data"].get(
        "text/html", ""
    ).startswith("<div><progress")


def text_of(cell):
    """Every text output of a cell but progress displays, joined."""
    parts = []
    for out in cell.get("outputs", []):
        if is_progress(out):
            continue
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif out["output_type"] in ("execute_result", "display_data"):
            parts.append(out["data"].get("text/plain", ""))
        elif out["output_type"] == "error":
            parts.append(f"{out['ename']}: {out['evalue']}")
    return "".join(parts)


def html_of(cell):
    """Every HTML output of a cell but progress displays, joined."""
    return "".join(
        out["data"].get("text/html", "")
        for out in cell.get("outputs", [])
        if out["output_type"] in ("execute_result", "display_data")
        and not is_progress(out)
    )


def errors_of(cell):
    """A cell's error outputs."""
    return [o for o in cell.get("outputs", []) if o["output_type"] == "error"]
