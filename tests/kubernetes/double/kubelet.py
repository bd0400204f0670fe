"""The node side of the Kubernetes double: the controllers of Deployments and
ReplicaSets, a scheduler that binds pods that fit the node (and explains the
ones that do not, with FailedScheduling events, as kube-scheduler does), a
kubelet that runs each container's command as a local process, and a
kube-proxy that forwards each service's cluster IP to a ready pod.

Each pod gets its own loopback address (127.B.N.M) as its IP, and its own
mount namespace: its volumes (emptyDir, secret, configMap) and the files of
its image are bind-mounted where the pod spec says, and /etc/hosts lists the
services by name (the double's DNS). Containers run as the pod's runAsUser,
with secret files owned by its fsGroup as the kubelet makes them."""

import base64
import copy
import hashlib
import json
import os
import re
import select
import shlex
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid

from store import ApiError, now

NODE = "kubelet-0"


def quantity(text):
    """A Kubernetes quantity (`500m`, `2`, `4Gi`, `1e9`) as a float (cores or bytes)."""
    if text is None:
        return 0.0
    text = str(text)
    units = {
        "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
        "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
    }
    for suffix in sorted(units, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * units[suffix]
    return float(text)


def requests_of(pod):
    cpu = memory = 0.0
    for c in pod["spec"].get("containers", []):
        res = c.get("resources") or {}
        req = res.get("requests") or res.get("limits") or {}
        cpu += quantity(req.get("cpu"))
        memory += quantity(req.get("memory"))
    return cpu, memory


def expand(text, env):
    """Kubernetes' $(VAR) expansion: defined variables are replaced, $$ escapes."""
    def replace(m):
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", replace, text)


class Node:
    """Controllers, scheduler, kubelet and kube-proxy of one node."""

    def __init__(self, server, workdir, images, cpu="8", memory="16Gi", pods=110):
        self.server = server
        self.store = server.store
        self.workdir = workdir
        # image name -> [(host path, path in the container)]
        self.images = images
        self.capacity = {"cpu": cpu, "memory": memory, "pods": str(pods)}
        self.running = {}  # pod uid -> Pod
        self.proxies = {}  # (ip, port) -> Proxy
        self.next_ip = 0
        self.block, self.block_lock = self.hold_block()
        self.lock = threading.Lock()
        self.stopping = False
        self.hosts = os.path.join(workdir, "hosts")
        self.told = {}  # pod uid -> last scheduling message
        server.admission.append(self.admit)
        os.makedirs(workdir, exist_ok=True)
        self.write_hosts()
        self.res = lambda group, plural: self.store.resource(group, plural)
        for ns in ("default", "kube-system"):
            self.store.create(self.res("", "namespaces"), None, {"metadata": {"name": ns}})
        self.store.create(
            self.res("", "nodes"),
            None,
            {
                "metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux"}},
                "spec": {},
            },
        )
        node = self.store.get(self.res("", "nodes"), None, NODE)
        node["status"] = {
            "capacity": self.capacity,
            "allocatable": self.capacity,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        }
        self.store.update(self.res("", "nodes"), None, NODE, node, subresource="status")
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    # -- admission: the defaults the API server fills in ----------------------

    def admit(self, resource, obj):
        if resource.plural == "pods" and not resource.group:
            spec = obj.setdefault("spec", {})
            spec.setdefault("restartPolicy", "Always")
            spec.setdefault("terminationGracePeriodSeconds", 30)
            obj["status"] = {"phase": "Pending", "conditions": []}
        if resource.plural == "services" and not resource.group:
            spec = obj.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            if spec.get("clusterIP") != "None":
                spec["clusterIP"] = self.allocate_ip(service=True)
                spec["clusterIPs"] = [spec["clusterIP"]]
            for port in spec.get("ports", []):
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
                if spec["type"] in ("NodePort", "LoadBalancer"):
                    port.setdefault("nodePort", 30000 + (hash((obj["metadata"].get("name"), port["port"])) % 2767))
        return obj

    def allocate_ip(self, service=False):
        """Pods' IPs are 127.B.0-99.x, services' 127.B.100-199.x, in the
        block B this double holds (doubles running at once never share one)."""
        with self.lock:
            self.next_ip += 1
            n = self.next_ip
        return f"127.{self.block}.{n // 250 + (100 if service else 0)}.{n % 250 + 2}"

    @staticmethod
    def hold_block():
        """The lowest address block 127.B/16 (B ≥ 2) no other double holds."""
        import fcntl

        for block in range(2, 255):
            held = open(os.path.join(tempfile.gettempdir(), f"rask-k8s-double-{block}.lock"), "w")
            try:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return block, held
            except OSError:
                held.close()
        raise RuntimeError("every 127.B/16 block is held by a double")

    # -- the loop ---------------------------------------------------------------

    def loop(self):
        while not self.stopping:
            for part in (self.deployments, self.replicasets, self.schedule, self.kubelet, self.proxy):
                try:
                    part()
                except ApiError as e:
                    if e.code != 409:  # a conflict with a concurrent writer: next round
                        print(f"node {part.__name__}: {e.message}", flush=True)
                except Exception as e:  # noqa: BLE001 - the double keeps running, and says why
                    print(f"node {part.__name__}: {e!r}", flush=True)
            with self.store.lock:
                self.store.changed.wait(timeout=0.2)

    def owned(self, items, owner):
        uid = owner["metadata"]["uid"]
        return [i for i in items if any(r.get("uid") == uid for r in i["metadata"].get("ownerReferences") or [])]

    @staticmethod
    def reference(owner, kind, api_version):
        return {
            "apiVersion": api_version,
            "kind": kind,
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def deployments(self):
        deps = self.res("apps", "deployments")
        sets = self.res("apps", "replicasets")
        for dep in self.store.list(deps)[0]:
            if dep["metadata"].get("deletionTimestamp"):
                continue
            ns = dep["metadata"]["namespace"]
            template = dep["spec"].get("template", {})
            digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
            name = f"{dep['metadata']['name']}-{digest}"
            owned = self.owned(self.store.list(sets, ns)[0], dep)
            replicas = dep["spec"].get("replicas", 1)
            current = [s for s in owned if s["metadata"]["name"] == name]
            others = [s for s in owned if s["metadata"]["name"] != name]
            for old in others:
                if old["spec"].get("replicas", 0) != 0:
                    old["spec"]["replicas"] = 0
                    self.store.update(sets, ns, old["metadata"]["name"], old)
            if not current:
                labels = dict(template.get("metadata", {}).get("labels") or {}, **{"pod-template-hash": digest})
                tmpl = copy.deepcopy(template)
                tmpl.setdefault("metadata", {})["labels"] = labels
                selector = copy.deepcopy(dep["spec"].get("selector") or {})
                selector.setdefault("matchLabels", {})["pod-template-hash"] = digest
                # Recreate: the new set starts once the old pods are gone.
                old_pods = sum(s.get("status", {}).get("replicas", 0) for s in others)
                recreate = (dep["spec"].get("strategy") or {}).get("type") == "Recreate"
                self.store.create(
                    sets,
                    ns,
                    {
                        "metadata": {
                            "name": name,
                            "labels": labels,
                            "ownerReferences": [self.reference(dep, "Deployment", "apps/v1")],
                        },
                        "spec": {"replicas": 0 if recreate and old_pods else replicas, "selector": selector, "template": tmpl},
                    },
                )
                continue
            rs = current[0]
            old_pods = sum(s.get("status", {}).get("replicas", 0) for s in others)
            recreate = (dep["spec"].get("strategy") or {}).get("type") == "Recreate"
            want = 0 if recreate and old_pods else replicas
            if rs["spec"].get("replicas") != want:
                rs["spec"]["replicas"] = want
                self.store.update(sets, ns, rs["metadata"]["name"], rs)
            status = rs.get("status", {})
            new_status = {
                "observedGeneration": dep["metadata"].get("generation", 1),
                "replicas": status.get("replicas", 0) + old_pods,
                "updatedReplicas": status.get("replicas", 0),
                "readyReplicas": status.get("readyReplicas", 0),
                "availableReplicas": status.get("readyReplicas", 0),
            }
            if dep.get("status") != new_status:
                dep["status"] = new_status
                self.store.update(deps, ns, dep["metadata"]["name"], dep, subresource="status", check_version=False)

    def replicasets(self):
        sets = self.res("apps", "replicasets")
        pods_res = self.res("", "pods")
        for rs in self.store.list(sets)[0]:
            ns = rs["metadata"]["namespace"]
            pods = [p for p in self.owned(self.store.list(pods_res, ns)[0], rs) if not p["metadata"].get("deletionTimestamp")]
            want = rs["spec"].get("replicas", 1)
            if rs["metadata"].get("deletionTimestamp"):
                want = 0
            for _ in range(want - len(pods)):
                tmpl = copy.deepcopy(rs["spec"].get("template", {}))
                meta = tmpl.setdefault("metadata", {})
                meta.pop("name", None)  # a template's name is not its pods'
                meta["generateName"] = rs["metadata"]["name"] + "-"
                meta["ownerReferences"] = [self.reference(rs, "ReplicaSet", "apps/v1")]
                obj = self.server.admit(pods_res, {"metadata": meta, "spec": tmpl.get("spec", {})})
                self.store.create(pods_res, ns, obj)
            if len(pods) > want:
                # Pending and unready pods go first, then the newest.
                pods.sort(key=lambda p: (p["status"].get("phase") == "Running", self.ready(p), p["metadata"]["creationTimestamp"]))
                for pod in pods[: len(pods) - want]:
                    self.store.delete(pods_res, ns, pod["metadata"]["name"])
            status = {
                "replicas": len(pods),
                "readyReplicas": sum(self.ready(p) for p in pods),
                "observedGeneration": rs["metadata"].get("generation", 1),
            }
            if rs.get("status") != status:
                rs["status"] = status
                self.store.update(sets, ns, rs["metadata"]["name"], rs, subresource="status", check_version=False)

    @staticmethod
    def ready(pod):
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in pod.get("status", {}).get("conditions", []))

    # -- scheduler ----------------------------------------------------------------

    def schedule(self):
        pods_res = self.res("", "pods")
        pods = self.store.list(pods_res)[0]
        bound = [p for p in pods if p["spec"].get("nodeName") == NODE and p["status"].get("phase") in ("Pending", "Running")]
        used_cpu = sum(requests_of(p)[0] for p in bound)
        used_mem = sum(requests_of(p)[1] for p in bound)
        node_labels = {"kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux"}
        for pod in pods:
            if pod["spec"].get("nodeName") or pod["metadata"].get("deletionTimestamp"):
                continue
            cpu, mem = requests_of(pod)
            reasons = []
            selector = pod["spec"].get("nodeSelector") or {}
            if any(node_labels.get(k) != v for k, v in selector.items()):
                reasons.append("1 node(s) didn't match Pod's node affinity/selector")
            if used_cpu + cpu > quantity(self.capacity["cpu"]):
                reasons.append("1 Insufficient cpu")
            if used_mem + mem > quantity(self.capacity["memory"]):
                reasons.append("1 Insufficient memory")
            if len(bound) >= int(self.capacity["pods"]):
                reasons.append("1 Too many pods")
            ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
            if reasons:
                message = f"0/1 nodes are available: {', '.join(reasons)}. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
                if self.told.get(pod["metadata"]["uid"]) != message:
                    self.told[pod["metadata"]["uid"]] = message
                    pod["status"]["conditions"] = [
                        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message, "lastTransitionTime": now()}
                    ]
                    self.store.update(pods_res, ns, name, pod, subresource="status", check_version=False)
                    self.event(pod, "Warning", "FailedScheduling", message, source="default-scheduler")
                continue
            pod["spec"]["nodeName"] = NODE
            self.store.update(pods_res, ns, name, pod, check_version=False)
            pod = self.store.get(pods_res, ns, name)
            pod["status"]["conditions"] = [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now()}]
            self.store.update(pods_res, ns, name, pod, subresource="status", check_version=False)
            self.event(pod, "Normal", "Scheduled", f"Successfully assigned {ns}/{name} to {NODE}", source="default-scheduler")
            used_cpu += cpu
            used_mem += mem
            bound.append(pod)

    def event(self, obj, type_, reason, message, source="kubelet"):
        events = self.res("", "events")
        ns = obj["metadata"].get("namespace") or "default"
        self.store.create(
            events,
            ns,
            {
                "metadata": {"name": f"{obj['metadata']['name']}.{uuid.uuid4().hex[:12]}"},
                "involvedObject": {
                    "kind": obj.get("kind"),
                    "namespace": ns,
                    "name": obj["metadata"]["name"],
                    "uid": obj["metadata"]["uid"],
                    "apiVersion": obj.get("apiVersion"),
                },
                "reason": reason,
                "message": message,
                "type": type_,
                "source": {"component": source},
                "firstTimestamp": now(),
                "lastTimestamp": now(),
                "count": 1,
            },
        )

    # -- kubelet --------------------------------------------------------------------

    def kubelet(self):
        pods_res = self.res("", "pods")
        seen = set()
        for pod in self.store.list(pods_res)[0]:
            if pod["spec"].get("nodeName") != NODE:
                continue
            uid = pod["metadata"]["uid"]
            seen.add(uid)
            running = self.running.get(uid)
            if pod["metadata"].get("deletionTimestamp"):
                if running is None or running.stopped():
                    if running:
                        running.cleanup()
                        self.running.pop(uid, None)
                    try:
                        self.store.delete(pods_res, pod["metadata"]["namespace"], pod["metadata"]["name"], grace=0)
                    except ApiError:
                        pass
                elif not running.terminating:
                    running.terminate(pod["metadata"].get("deletionGracePeriodSeconds", 30))
                    self.event(pod, "Normal", "Killing", f"Stopping container {running.names()}")
                continue
            if running is None:
                if pod["status"].get("phase") in ("Succeeded", "Failed"):
                    continue
                running = Pod(self, pod)
                self.running[uid] = running
            status = running.step(pod)
            if status is not None and status != pod.get("status"):
                pod["status"] = status
                try:
                    self.store.update(pods_res, pod["metadata"]["namespace"], pod["metadata"]["name"], pod, subresource="status", check_version=False)
                except ApiError:
                    pass
        for uid in list(self.running):
            if uid not in seen:
                self.running.pop(uid).kill_now()

    # -- kube-proxy and DNS ---------------------------------------------------------

    def proxy(self):
        services = self.store.list(self.res("", "services"))[0]
        pods = [p for p in self.store.list(self.res("", "pods"))[0] if self.ready(p) and not p["metadata"].get("deletionTimestamp")]
        wanted = {}
        names = []
        for svc in services:
            spec = svc["spec"]
            ip = spec.get("clusterIP")
            if not ip or ip == "None":
                continue
            ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
            names.append((ip, [f"{name}.{ns}.svc.cluster.local", f"{name}.{ns}.svc", f"{name}.{ns}"] + ([name] if ns == "default" else [])))
            selector = spec.get("selector") or {}
            backends = [
                p for p in pods
                if p["metadata"]["namespace"] == ns and selector and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
            ]
            for port in spec.get("ports", []):
                targets = []
                for p in backends:
                    target = resolve_port(p, port.get("targetPort", port["port"]))
                    if target:
                        targets.append((p["status"]["podIP"], target))
                wanted[(ip, port["port"])] = targets
        for key in list(self.proxies):
            if key not in wanted:
                self.proxies.pop(key).close()
        for key, targets in wanted.items():
            if key not in self.proxies:
                try:
                    self.proxies[key] = Proxy(key)
                except OSError as e:
                    print(f"kube-proxy: cannot listen on {key}: {e}", flush=True)
                    continue
            self.proxies[key].targets = targets
        self.write_hosts(names)

    def write_hosts(self, names=()):
        text = "127.0.0.1 localhost\n" + "".join(f"{ip} {' '.join(n)}\n" for ip, n in names)
        try:
            with open(self.hosts) as f:
                if f.read() == text:
                    return
        except FileNotFoundError:
            pass
        # In place: pods see it through their bind mount.
        with open(self.hosts, "a+") as f:
            f.seek(0)
            f.truncate()
            f.write(text)

    def stop(self):
        self.stopping = True
        for pod in list(self.running.values()):
            pod.kill_now()
        for proxy in self.proxies.values():
            proxy.close()


def resolve_port(pod, target):
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        return int(target)
    for c in pod["spec"].get("containers", []):
        for p in c.get("ports", []):
            if p.get("name") == target:
                return p["containerPort"]
    return None


class Proxy:
    """Forwards connections to a service's cluster IP and port to a ready pod."""

    def __init__(self, key):
        self.key = key
        self.targets = []
        self.count = 0
        self.sock = socket.create_server(key, reuse_port=False)
        self.closed = False
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.forward, args=(conn,), daemon=True).start()

    def forward(self, conn):
        targets = list(self.targets)
        if not targets:
            conn.close()  # no endpoints: connection refused, as iptables rejects
            return
        self.count += 1
        target = targets[self.count % len(targets)]
        try:
            upstream = socket.create_connection(target, timeout=5)
            upstream.settimeout(None)
        except OSError:
            conn.close()
            return
        pair = [conn, upstream]
        try:
            while True:
                readable, _, _ = select.select(pair, [], [])
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        raise EOFError
                    (upstream if s is conn else conn).sendall(data)
        except (OSError, EOFError):
            pass
        finally:
            conn.close()
            upstream.close()

    def close(self):
        self.closed = True
        self.sock.close()


class Pod:
    """A pod's containers as local processes."""

    def __init__(self, node, pod):
        self.node = node
        self.uid = pod["metadata"]["uid"]
        self.ip = node.allocate_ip()
        self.dir = tempfile.mkdtemp(prefix=f"{pod['metadata']['name']}-", dir=node.workdir)
        self.procs = {}  # container name -> Popen
        self.restarts = {}
        self.backoff_until = {}
        self.exit_codes = {}
        self.waiting = {}  # container name -> (reason, message)
        self.terminating = False
        self.kill_at = None
        self.started = now()
        self.ready_once = False

    def names(self):
        return ", ".join(self.procs) or "-"

    def env_of(self, pod, container):
        store, node = self.node.store, self.node
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "HOSTNAME": pod["metadata"]["name"]}

        def secret(name, key=None):
            obj = store.get(node.res("", "secrets"), pod["metadata"]["namespace"], name)
            data = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
            return data if key is None else data[key]

        def config(name, key=None):
            obj = store.get(node.res("", "configmaps"), pod["metadata"]["namespace"], name)
            data = obj.get("data") or {}
            return data if key is None else data[key]

        for source in container.get("envFrom", []):
            try:
                if "secretRef" in source:
                    env.update(secret(source["secretRef"]["name"]))
                if "configMapRef" in source:
                    env.update(config(source["configMapRef"]["name"]))
            except ApiError as e:
                if not (source.get("secretRef") or source.get("configMapRef") or {}).get("optional"):
                    raise ConfigError(e.message)
        fields = {
            "metadata.name": pod["metadata"]["name"],
            "metadata.namespace": pod["metadata"]["namespace"],
            "metadata.uid": pod["metadata"]["uid"],
            "spec.nodeName": NODE,
            "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
            "status.podIP": self.ip,
            "status.hostIP": "127.0.0.1",
        }
        for var in container.get("env", []):
            if "value" in var:
                env[var["name"]] = expand(str(var["value"]), env)
                continue
            source = var.get("valueFrom") or {}
            try:
                if "fieldRef" in source:
                    path = source["fieldRef"]["fieldPath"]
                    label = re.fullmatch(r"metadata\.labels\['(.+)'\]", path)
                    env[var["name"]] = (pod["metadata"].get("labels") or {}).get(label.group(1), "") if label else fields[path]
                elif "secretKeyRef" in source:
                    ref = source["secretKeyRef"]
                    env[var["name"]] = secret(ref["name"], ref["key"])
                elif "configMapKeyRef" in source:
                    ref = source["configMapKeyRef"]
                    env[var["name"]] = config(ref["name"], ref["key"])
            except (ApiError, KeyError) as e:
                ref = source.get("secretKeyRef") or source.get("configMapKeyRef") or {}
                if not ref.get("optional"):
                    what = f"secret \"{ref.get('name')}\"" if "secretKeyRef" in source else f"{ref or source}"
                    raise ConfigError(f"{what} not found" if isinstance(e, ApiError) else f"couldn't find key {e} in {what}")
        return env

    def volumes(self, pod):
        """Host directories for the pod's volumes, by name."""
        found = {}
        security = pod["spec"].get("securityContext") or {}
        fs_group = security.get("fsGroup")
        for vol in pod["spec"].get("volumes", []):
            path = os.path.join(self.dir, "volumes", vol["name"])
            if "emptyDir" in vol:
                os.makedirs(path, exist_ok=True)
                os.chmod(path, 0o777)
            elif "secret" in vol or "configMap" in vol:
                os.makedirs(path, exist_ok=True)
                spec = vol.get("secret") or vol.get("configMap")
                name = spec.get("secretName") or spec.get("name")
                try:
                    if "secret" in vol:
                        obj = self.node.store.get(self.node.res("", "secrets"), pod["metadata"]["namespace"], name)
                        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
                    else:
                        obj = self.node.store.get(self.node.res("", "configmaps"), pod["metadata"]["namespace"], name)
                        data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
                except ApiError:
                    if spec.get("optional"):
                        data = {}
                    else:
                        kind = "secret" if "secret" in vol else "configmap"
                        raise MountError(f'MountVolume.SetUp failed for volume "{vol["name"]}" : {kind} "{name}" not found')
                mode = spec.get("defaultMode", 0o644)
                for key, value in data.items():
                    file = os.path.join(path, key)
                    with open(file, "wb") as f:
                        f.write(value)
                    if fs_group is not None:
                        os.chown(file, 0, fs_group)
                        # As the kubelet does with an fsGroup: the group may read.
                        mode |= 0o040
                    os.chmod(file, mode)
                if fs_group is not None:
                    os.chown(path, 0, fs_group)
                os.chmod(path, 0o755)
            elif "hostPath" in vol:
                path = vol["hostPath"]["path"]
            else:
                raise MountError(f"volume {vol['name']!r}: only emptyDir, secret, configMap and hostPath volumes run here")
            found[vol["name"]] = path
        return found

    def start(self, pod, container):
        name = container["name"]
        image = container.get("image")
        if image not in self.node.images:
            self.waiting[name] = ("ErrImagePull", f'failed to pull image "{image}": not found in the double\'s images')
            return
        env = self.env_of(pod, container)
        volumes = self.volumes(pod)
        command = [expand(c, env) for c in (container.get("command") or [])] + [expand(a, env) for a in (container.get("args") or [])]
        if not command:
            self.waiting[name] = ("CreateContainerError", "the double runs only containers with a command")
            return
        binds = [(self.node.hosts, "/etc/hosts", True)]
        binds += [(src, dst, True) for src, dst in self.node.images[image]]
        for mount in container.get("volumeMounts", []):
            if mount["name"] not in volumes:
                self.waiting[name] = ("CreateContainerConfigError", f"volume {mount['name']!r} not found")
                return
            binds.append((volumes[mount["name"]], mount["mountPath"], mount.get("readOnly", False)))
        # Mount points that do not exist are made inside an overlay on their
        # nearest existing directory, in the pod's namespace only (the host's
        # file system is never written); then everything is bind-mounted, so
        # no overlay hides a bind (such as /etc/hosts).
        script = []
        for n, (src, dst, _) in enumerate(binds):
            if os.path.exists(dst):
                continue
            base = os.path.dirname(dst)
            while not os.path.isdir(base):
                base = os.path.dirname(base)
            layer = os.path.join(self.dir, "overlay", str(n))
            os.makedirs(os.path.join(layer, "upper"), exist_ok=True)
            os.makedirs(os.path.join(layer, "work"), exist_ok=True)
            script.append(
                f"mount -t overlay overlay -o lowerdir={shlex.quote(base)},"
                f"upperdir={shlex.quote(layer)}/upper,workdir={shlex.quote(layer)}/work {shlex.quote(base)}"
            )
            if os.path.isdir(src):
                script.append(f"mkdir -p {shlex.quote(dst)}")
            else:
                script.append(f"mkdir -p {shlex.quote(os.path.dirname(dst))} && touch {shlex.quote(dst)}")
        for src, dst, read_only in binds:
            script.append(f"mount --bind {shlex.quote(src)} {shlex.quote(dst)}")
            if read_only:
                script.append(f"mount -o remount,bind,ro {shlex.quote(dst)}")
        security = dict(pod["spec"].get("securityContext") or {}, **(container.get("securityContext") or {}))
        user = security.get("runAsUser")
        group = security.get("runAsGroup", user)
        drop = []
        if user is not None:
            groups = ",".join(str(g) for g in [security.get("fsGroup")] if g is not None)
            drop = ["setpriv", f"--reuid={user}", f"--regid={group}"]
            drop += [f"--groups={groups}"] if groups else ["--clear-groups"]
        if security.get("runAsNonRoot") and not user:
            self.waiting[name] = ("CreateContainerConfigError", "container has runAsNonRoot and image will run as root")
            return
        workdir = container.get("workingDir") or "/tmp"
        script.append(f"cd {shlex.quote(workdir)}")
        script.append('exec "$@"')
        log = open(os.path.join(self.dir, f"{name}.log"), "ab")
        proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", " && ".join(script), "sh"] + drop + command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.procs[name] = proc
        self.waiting.pop(name, None)
        self.node.event(pod, "Normal", "Started", f"Started container {name}")

    def step(self, pod):
        """Starts, restarts and probes containers; returns the pod's status."""
        policy = pod["spec"].get("restartPolicy", "Always")
        containers = pod["spec"].get("containers", [])
        for c in containers:
            name = c["name"]
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is not None:
                code = proc.returncode
                self.exit_codes[name] = code
                del self.procs[name]
                if policy == "Always" or (policy == "OnFailure" and code != 0):
                    count = self.restarts.get(name, 0)
                    self.restarts[name] = count + 1
                    # The kubelet's back-off: 10 s, doubling, at most 5 minutes.
                    self.backoff_until[name] = time.monotonic() + min(10 * 2**count, 300)
                    self.waiting[name] = ("CrashLoopBackOff", f"back-off restarting failed container {name}")
                    self.node.event(pod, "Warning", "BackOff", f"Back-off restarting failed container {name}")
            if name in self.procs:
                continue
            if name in self.backoff_until:
                if time.monotonic() < self.backoff_until[name]:
                    continue
                del self.backoff_until[name]
                self.exit_codes.pop(name, None)
            elif name in self.exit_codes:
                continue  # ended for good (restartPolicy)
            try:
                self.start(pod, c)
            except ConfigError as e:
                self.waiting[name] = ("CreateContainerConfigError", str(e))
            except MountError as e:
                self.waiting[name] = ("ContainerCreating", str(e))
        statuses = []
        for c in containers:
            name = c["name"]
            state = {}
            if name in self.procs:
                state = {"running": {"startedAt": self.started}}
            elif name in self.waiting:
                reason, message = self.waiting[name]
                state = {"waiting": {"reason": reason, "message": message}}
            elif name in self.exit_codes:
                code = self.exit_codes[name]
                state = {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error"}}
            ready = name in self.procs and self.probe(pod, c)
            statuses.append(
                {"name": name, "image": c.get("image"), "ready": ready, "restartCount": self.restarts.get(name, 0), "state": state}
            )
        all_ready = bool(statuses) and all(s["ready"] for s in statuses)
        phase = "Pending"
        if any("running" in s["state"] for s in statuses):
            phase = "Running"
        elif statuses and all("terminated" in s["state"] for s in statuses):
            phase = "Succeeded" if all(s["state"]["terminated"]["exitCode"] == 0 for s in statuses) else "Failed"
        conditions = [c for c in pod["status"].get("conditions", []) if c.get("type") == "PodScheduled"]
        conditions.append({"type": "Ready", "status": "True" if all_ready else "False"})
        conditions.append({"type": "ContainersReady", "status": "True" if all_ready else "False"})
        return {
            "phase": phase,
            "podIP": self.ip,
            "podIPs": [{"ip": self.ip}],
            "hostIP": "127.0.0.1",
            "startTime": self.started,
            "conditions": conditions,
            "containerStatuses": statuses,
        }

    def probe(self, pod, container):
        probe = container.get("readinessProbe")
        if not probe:
            return True
        if "tcpSocket" in probe:
            port = resolve_port(pod, probe["tcpSocket"]["port"])
            try:
                socket.create_connection((self.ip, port), timeout=0.5).close()
                return True
            except OSError:
                return False
        if "httpGet" in probe:
            import urllib.request

            port = resolve_port(pod, probe["httpGet"]["port"])
            try:
                urllib.request.urlopen(f"http://{self.ip}:{port}{probe['httpGet'].get('path', '/')}", timeout=0.5)
                return True
            except OSError:
                return False
        return True

    def terminate(self, grace):
        self.terminating = True
        self.kill_at = time.monotonic() + grace
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        threading.Thread(target=self._reap, daemon=True).start()

    def _reap(self):
        while any(p.poll() is None for p in self.procs.values()):
            if time.monotonic() >= self.kill_at:
                self.kill_now()
                return
            time.sleep(0.05)

    def stopped(self):
        return all(p.poll() is not None for p in self.procs.values())

    def kill_now(self):
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()

    def cleanup(self):
        pass  # the pod's directory stays for its logs (the test's artefacts)


class ConfigError(Exception):
    """A container whose environment cannot be made (a missing secret or key)."""


class MountError(Exception):
    """A volume that cannot be mounted (yet)."""
