"""A Kubernetes double for rask's tests: an API server on 127.0.0.1 and one
node whose kubelet runs pods' commands as local processes.

    python tests/kubernetes/double --workdir DIR \\
        --image localhost/rask:latest=target/release/rask:/usr/local/bin/rask

writes DIR/kubeconfig once it serves (its server line is the API's URL), and
stops every pod on SIGTERM or SIGINT. Needs root (pods get mount namespaces)."""

import argparse
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kubelet import Node  # noqa: E402
from server import serve  # noqa: E402
from store import Store  # noqa: E402

KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: double
  cluster:
    server: {url}
contexts:
- name: double
  context:
    cluster: double
    user: double
    namespace: default
current-context: double
users:
- name: double
  user:
    token: rask-test-double
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--image", action="append", default=[], metavar="NAME=[HOST:PATH,...]",
                        help="the files of an image, bind-mounted into its containers (none: the host's)")
    parser.add_argument("--cpu", default="8", help="the node's allocatable CPU")
    parser.add_argument("--memory", default="16Gi", help="the node's allocatable memory")
    parser.add_argument("--history", type=int, default=500, help="changes a watch can resume from")
    parser.add_argument("--bookmark-interval", type=float, default=1.0)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()

    images = {}
    for spec in args.image:
        name, files = spec.split("=", 1)
        # An image of no files runs commands from the host's own filesystem.
        images[name] = [tuple(f.rsplit(":", 1)) for f in files.split(",") if f]
    store = Store(history=args.history)
    server = serve(store, port=args.port, bookmark_interval=args.bookmark_interval, verbose=args.verbose)
    node = Node(server, os.path.join(args.workdir, "node"), images, cpu=args.cpu, memory=args.memory)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    kubeconfig = os.path.join(args.workdir, "kubeconfig")
    with open(kubeconfig + ".tmp", "w") as f:
        f.write(KUBECONFIG.format(url=url))
    os.chmod(kubeconfig + ".tmp", 0o600)
    os.replace(kubeconfig + ".tmp", kubeconfig)
    print(f"serving {url}", flush=True)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    server.stopping = True
    node.stop()
    server.shutdown()


if __name__ == "__main__":
    main()
