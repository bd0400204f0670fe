"""The Kubernetes double keeps Kubernetes' semantics where rask relies on
them: conflicts, watches (bookmarks, 410 Expired), finalizers, owner
references, subresources, CRDs, and pods that really run, restart, stop
gracefully, reach each other through services, or wait unschedulable with
the scheduler's reason. Run as root: python -m unittest test_double."""

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


class Api:
    def __init__(self, url):
        self.url = url

    def call(self, method, path, body=None, content_type="application/json"):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def ok(self, method, path, body=None, content_type="application/json"):
        code, reply = self.call(method, path, body, content_type)
        assert 200 <= code < 300, (method, path, code, reply)
        return reply

    def watch(self, path, timeout=5):
        """Events of a watch, read until the server ends it (timeoutSeconds)."""
        sep = "&" if "?" in path else "?"
        with urllib.request.urlopen(f"{self.url}{path}{sep}watch=true&timeoutSeconds={timeout}", timeout=timeout + 5) as r:
            return [json.loads(line) for line in r.read().decode().splitlines() if line.strip()]


def wait_for(what, check, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class DoubleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="k8s-double-")
        os.chmod(cls.dir, 0o755)  # pods run as other users too
        cls.python = os.path.realpath(sys.executable)
        cls.proc = subprocess.Popen(
            [
                sys.executable, os.path.join(HERE, "double"), "--workdir", cls.dir, "--history", "50",
                "--bookmark-interval", "0.5", "--cpu", "4", "--memory", "8Gi",
                "--image", "python=",
            ],
            stdout=open(os.path.join(cls.dir, "double.log"), "w"),
            stderr=subprocess.STDOUT,
        )
        kubeconfig = os.path.join(cls.dir, "kubeconfig")
        wait_for("the double's kubeconfig", lambda: os.path.exists(kubeconfig))
        url = next(line.split()[1] for line in open(kubeconfig) if "server:" in line)
        cls.api = Api(url)

    @classmethod
    def tearDownClass(cls):
        cls.proc.send_signal(signal.SIGTERM)
        cls.proc.wait(timeout=30)

    def configmap(self, name, **extra):
        return dict({"metadata": {"name": name}, "data": {"k": "v"}}, **extra)

    def test_create_conflicts_and_stale_updates(self):
        api = self.api
        made = api.ok("POST", "/api/v1/namespaces/default/configmaps", self.configmap("c1"))
        code, reply = api.call("POST", "/api/v1/namespaces/default/configmaps", self.configmap("c1"))
        self.assertEqual((code, reply["reason"]), (409, "AlreadyExists"))
        made["data"]["k"] = "w"
        updated = api.ok("PUT", "/api/v1/namespaces/default/configmaps/c1", made)
        self.assertGreater(int(updated["metadata"]["resourceVersion"]), int(made["metadata"]["resourceVersion"]))
        made["data"]["k"] = "stale"
        code, reply = api.call("PUT", "/api/v1/namespaces/default/configmaps/c1", made)
        self.assertEqual((code, reply["reason"]), (409, "Conflict"))
        code, _ = api.call("GET", "/api/v1/namespaces/default/configmaps/missing")
        self.assertEqual(code, 404)
        code, _ = api.call("POST", "/api/v1/namespaces/nowhere/configmaps", self.configmap("c2"))
        self.assertEqual(code, 404)

    def test_patches_in_every_format(self):
        api = self.api
        api.ok("POST", "/api/v1/namespaces/default/configmaps", self.configmap("p1"))
        api.ok("PATCH", "/api/v1/namespaces/default/configmaps/p1", {"data": {"x": "1", "k": None}}, "application/merge-patch+json")
        got = api.ok("PATCH", "/api/v1/namespaces/default/configmaps/p1",
                     [{"op": "test", "path": "/data/x", "value": "1"}, {"op": "add", "path": "/metadata/labels", "value": {"a": "b"}}],
                     "application/json-patch+json")
        self.assertEqual((got["data"], got["metadata"]["labels"]), ({"x": "1"}, {"a": "b"}))
        code, _ = api.call("PATCH", "/api/v1/namespaces/default/configmaps/p1",
                           [{"op": "test", "path": "/data/x", "value": "2"}], "application/json-patch+json")
        self.assertEqual(code, 422)
        code, _ = api.call("PATCH", "/api/v1/namespaces/default/configmaps/p1",
                           {"metadata": {"resourceVersion": "1"}, "data": {"x": "3"}}, "application/merge-patch+json")
        self.assertEqual(code, 409)
        applied = api.ok("PATCH", "/api/v1/namespaces/default/configmaps/p2?fieldManager=t",
                         {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "p2"}, "data": {"a": "1"}},
                         "application/apply-patch+yaml")
        self.assertEqual(applied["data"], {"a": "1"})

    def test_lists_select_and_page(self):
        api = self.api
        for i in range(7):
            api.ok("POST", "/api/v1/namespaces/default/configmaps",
                   {"metadata": {"name": f"l{i}", "labels": {"set": "l", "odd": str(i % 2)}}})
        page = api.ok("GET", "/api/v1/namespaces/default/configmaps?labelSelector=set%3Dl&limit=3")
        names = [o["metadata"]["name"] for o in page["items"]]
        while page["metadata"].get("continue"):
            page = api.ok("GET", f"/api/v1/namespaces/default/configmaps?limit=3&continue={page['metadata']['continue']}")
            names += [o["metadata"]["name"] for o in page["items"]]
        self.assertEqual(names, [f"l{i}" for i in range(7)])
        odd = api.ok("GET", "/api/v1/namespaces/default/configmaps?labelSelector=set%3Dl,odd%20in%20(1)")
        self.assertEqual(len(odd["items"]), 3)

    def test_watch_resumes_bookmarks_and_expires(self):
        api = self.api
        start = api.ok("GET", "/api/v1/namespaces/default/secrets")["metadata"]["resourceVersion"]
        api.ok("POST", "/api/v1/namespaces/default/secrets", {"metadata": {"name": "w1"}, "data": {}})
        events = api.watch(f"/api/v1/namespaces/default/secrets?resourceVersion={start}&allowWatchBookmarks=true", timeout=2)
        kinds = [e["type"] for e in events]
        self.assertEqual(kinds[0], "ADDED")
        self.assertEqual(events[0]["object"]["metadata"]["name"], "w1")
        self.assertIn("BOOKMARK", kinds)
        # 60 changes overflow the history of 50: the old version is gone.
        for i in range(60):
            api.ok("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": f"flood{i}"}})
        events = api.watch(f"/api/v1/namespaces/default/secrets?resourceVersion={start}", timeout=2)
        self.assertEqual(events[0]["type"], "ERROR")
        self.assertEqual(events[0]["object"]["code"], 410)

    def test_secret_string_data_is_stored_as_data(self):
        api = self.api
        made = api.ok("POST", "/api/v1/namespaces/default/secrets",
                      {"metadata": {"name": "sd"}, "data": {"a": "eA==", "b": "eA=="}, "stringData": {"b": "y"}})
        self.assertNotIn("stringData", made)
        self.assertEqual(made["data"], {"a": "eA==", "b": "eQ=="})
        patched = api.ok("PATCH", "/api/v1/namespaces/default/secrets/sd",
                         {"stringData": {"c": "z"}}, "application/merge-patch+json")
        self.assertEqual(patched["data"]["c"], "eg==")
        self.assertNotIn("stringData", api.ok("GET", "/api/v1/namespaces/default/secrets/sd"))

    def test_finalizers_hold_deletion_and_owners_collect_dependents(self):
        api = self.api
        owner = api.ok("POST", "/api/v1/namespaces/default/configmaps",
                       {"metadata": {"name": "owner", "finalizers": ["rask.dev/test"]}})
        ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
        api.ok("POST", "/api/v1/namespaces/default/secrets", {"metadata": {"name": "dep", "ownerReferences": [ref]}})
        held = api.ok("DELETE", "/api/v1/namespaces/default/configmaps/owner")
        self.assertIn("deletionTimestamp", held["metadata"])
        self.assertEqual(api.call("GET", "/api/v1/namespaces/default/configmaps/owner")[0], 200)
        api.ok("PATCH", "/api/v1/namespaces/default/configmaps/owner",
               {"metadata": {"finalizers": None}}, "application/merge-patch+json")
        self.assertEqual(api.call("GET", "/api/v1/namespaces/default/configmaps/owner")[0], 404)
        self.assertEqual(api.call("GET", "/api/v1/namespaces/default/secrets/dep")[0], 404)

    def crd(self):
        return {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.rask.dev"},
            "spec": {
                "group": "rask.dev",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [{
                    "name": "v1", "served": True, "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                    "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                }],
            },
        }

    def test_custom_resources_with_status_and_scale(self):
        api = self.api
        api.ok("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", self.crd())
        base = "/apis/rask.dev/v1/namespaces/default/widgets"
        made = api.ok("POST", base, {"metadata": {"name": "w"}, "spec": {"replicas": 1}, "status": {"replicas": 9}})
        self.assertNotIn("status", made)  # the status is the controller's
        api.ok("PATCH", f"{base}/w/status", {"status": {"replicas": 1}}, "application/merge-patch+json")
        ignored = api.ok("PATCH", f"{base}/w", {"status": {"replicas": 5}}, "application/merge-patch+json")
        self.assertEqual(ignored["status"], {"replicas": 1})
        scale = api.ok("GET", f"{base}/w/scale")
        self.assertEqual((scale["kind"], scale["spec"]["replicas"], scale["status"]["replicas"]), ("Scale", 1, 1))
        api.ok("PATCH", f"{base}/w/scale", {"spec": {"replicas": 4}}, "application/merge-patch+json")
        widget = api.ok("GET", f"{base}/w")
        self.assertEqual((widget["spec"]["replicas"], widget["metadata"]["generation"]), (4, 2))

    def pod(self, name, command, **spec):
        return {
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": dict({"containers": [{"name": "main", "image": "python", "command": command}]}, **spec),
        }

    def test_pods_run_serve_through_a_service_and_stop_gracefully(self):
        api = self.api
        server = [self.python, "-c",
                  "import http.server,os,signal,sys\n"
                  "signal.signal(signal.SIGTERM, lambda *a: (open(os.environ['MARK'],'w').write('term'), sys.exit(0)))\n"
                  "http.server.HTTPServer((os.environ['POD_IP'], 8080), http.server.SimpleHTTPRequestHandler).serve_forever()"]
        mark = os.path.join(self.dir, "terminated")
        pod = self.pod("web", server)
        pod["spec"]["containers"][0].update(
            env=[{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}, {"name": "MARK", "value": mark}],
            ports=[{"name": "http", "containerPort": 8080}],
            readinessProbe={"tcpSocket": {"port": "http"}},
        )
        api.ok("POST", "/api/v1/namespaces/default/pods", pod)
        svc = api.ok("POST", "/api/v1/namespaces/default/services",
                      {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}})
        ready = wait_for("the pod to be ready", lambda: (lambda p: p if any(
            c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", [])) else None)(
            api.ok("GET", "/api/v1/namespaces/default/pods/web")))
        self.assertEqual(ready["status"]["phase"], "Running")
        ip = svc["spec"]["clusterIP"]

        def fetch():
            try:
                return urllib.request.urlopen(f"http://{ip}:80/", timeout=2).status == 200
            except OSError:
                return False

        wait_for("the service to answer", fetch)
        deleting = api.ok("DELETE", "/api/v1/namespaces/default/pods/web")
        self.assertIn("deletionTimestamp", deleting["metadata"])
        wait_for("the pod to be gone", lambda: api.call("GET", "/api/v1/namespaces/default/pods/web")[0] == 404)
        self.assertEqual(open(mark).read(), "term")

    def test_unschedulable_pods_wait_with_the_reason(self):
        api = self.api
        pod = self.pod("huge", [self.python, "-c", "pass"])
        pod["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "64"}}
        api.ok("POST", "/api/v1/namespaces/default/pods", pod)
        event = wait_for("a FailedScheduling event", lambda: next((
            e for e in api.ok("GET", "/api/v1/namespaces/default/events")["items"]
            if e["involvedObject"]["name"] == "huge" and e["reason"] == "FailedScheduling"), None))
        self.assertIn("Insufficient cpu", event["message"])
        got = api.ok("GET", "/api/v1/namespaces/default/pods/huge")
        self.assertEqual(got["status"]["phase"], "Pending")
        self.assertEqual(got["status"]["conditions"][0]["reason"], "Unschedulable")

    def test_deployments_keep_their_pods_and_secrets_reach_them(self):
        api = self.api
        api.ok("POST", "/api/v1/namespaces/default/services",
               {"metadata": {"name": "tok-svc"}, "spec": {"selector": {"app": "none"}, "ports": [{"port": 80}]}})
        token = base64.b64encode(b"s3cret").decode()
        api.ok("POST", "/api/v1/namespaces/default/secrets", {"metadata": {"name": "tok"}, "data": {"token": token}})
        out = os.path.join(self.dir, "seen")
        os.makedirs(out, exist_ok=True)
        os.chmod(out, 0o777)
        script = ("import os,time\n"
                  "import socket\n"
                  "socket.gethostbyname('tok-svc')  # the double's DNS, beside the mount under /etc\n"
                  "open(os.path.join(os.environ['OUT'], os.environ['NAME']), 'w').write(os.environ['TOKEN'] + ':' + open('/etc/tok/token').read() + ':' + str(os.getuid()))\n"
                  "time.sleep(1000)")
        template = self.pod("dep", [self.python, "-c", script])
        container = template["spec"]["containers"][0]
        container["env"] = [
            {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "OUT", "value": out},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "tok", "key": "token"}}},
        ]
        container["volumeMounts"] = [{"name": "tok", "mountPath": "/etc/tok", "readOnly": True}]
        template["spec"]["volumes"] = [{"name": "tok", "secret": {"secretName": "tok", "defaultMode": 0o400}}]
        template["spec"]["securityContext"] = {"runAsUser": 65532, "runAsNonRoot": True, "fsGroup": 65532}
        api.ok("POST", "/apis/apps/v1/namespaces/default/deployments", {
            "metadata": {"name": "dep"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "dep"}}, "template": {"metadata": template["metadata"], "spec": template["spec"]}},
        })
        wait_for("2 pods to report", lambda: len(os.listdir(out)) == 2)
        for name in os.listdir(out):
            self.assertEqual(open(os.path.join(out, name)).read(), "s3cret:s3cret:65532")
        # The mount point was made in the pods' namespaces, not on the host.
        self.assertFalse(os.path.exists("/etc/tok"))
        api.ok("PATCH", "/apis/apps/v1/namespaces/default/deployments/dep/scale", {"spec": {"replicas": 1}}, "application/merge-patch+json")
        wait_for("1 pod left", lambda: len([
            p for p in api.ok("GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Ddep")["items"]]) == 1, timeout=60)
        api.ok("DELETE", "/apis/apps/v1/namespaces/default/deployments/dep")
        wait_for("every pod gone", lambda: not api.ok("GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Ddep")["items"], timeout=60)


if __name__ == "__main__":
    unittest.main()
