"""The rask kernel against jupyter_kernel_test's protocol checks (every sample
attribute set), driven by the real jupyter_client. Run by tests/kernel.rs with
JUPYTER_PATH pointing at a kernelspec installed by `rask kernel install`."""

import unittest

import jupyter_kernel_test as jkt


class RaskKernelTests(jkt.KernelTests):
    kernel_name = "rask"
    language_name = "rust"
    file_extension = ".rs"

    code_hello_world = 'println!("hello, world");'
    code_stderr = 'eprintln!("to standard error");'

    completion_samples = [
        {"text": "std::collections::BTreeM", "matches": {"BTreeMap"}},
    ]

    complete_code_samples = [
        "1",
        'println!("hello, world");',
        "fn f(x: i32) -> i32 {\n    x * 2\n}",
        "let c = '}';",
    ]
    incomplete_code_samples = [
        "fn f(x: i32) -> i32 {",
        'let s = "an open string',
        "let v = vec![1, 2,",
    ]
    invalid_code_samples = ["let x = 1; }", "foo(]"]

    # IPython's `name?`: the item's documentation in the pager.
    code_page_something = "std::vec::Vec?"

    code_generate_error = 'let x: i32 = "not a number";'

    code_execute_result = [
        {"code": "1 + 2 + 3", "result": "6"},
        {"code": "vec![1, 4, 9]", "result": "[1, 4, 9]"},
    ]

    code_display_data = [
        {"code": 'rask::notebook::display_html("<b>test</b>");', "mime": "text/html"},
        {
            "code": 'rask::notebook::display("image/svg+xml", "<svg xmlns=\\"http://www.w3.org/2000/svg\\"/>");',
            "mime": "image/svg+xml",
        },
    ]

    code_history_pattern = "1 + 2*"
    supported_history_operations = ("tail", "range", "search")

    code_inspect_sample = "std::vec::Vec"

    code_clear_output = "rask::notebook::clear_output(false);"


class RaskKernelWelcomeTests(jkt.IopubWelcomeTests):
    kernel_name = "rask"
    support_iopub_welcome = True


if __name__ == "__main__":
    unittest.main()
