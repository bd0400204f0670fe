"""The HTTP face of the API server double: Kubernetes' URL layout and verbs
(get, list with label and field selectors and pages, watch with bookmarks and
410 Expired, create, replace, patch in four formats, delete and
deletecollection), the status and scale subresources, and resources defined
at run time by CustomResourceDefinitions."""

import base64
import copy
import http.server
import json
import socketserver
import threading
import time
import urllib.parse

from patch import PatchError, json_patch, merge_patch, strategic_merge
from store import ApiError, Resource, now

BUILTIN = [
    Resource("", "v1", "namespaces", "Namespace", namespaced=False, status=True),
    Resource("", "v1", "pods", "Pod", status=True),
    Resource("", "v1", "services", "Service", status=True),
    Resource("", "v1", "events", "Event"),
    Resource("", "v1", "secrets", "Secret"),
    Resource("", "v1", "configmaps", "ConfigMap"),
    Resource("", "v1", "serviceaccounts", "ServiceAccount"),
    Resource("", "v1", "nodes", "Node", namespaced=False, status=True),
    Resource("apps", "v1", "deployments", "Deployment", status=True, scale=("spec.replicas", "status.replicas")),
    Resource("apps", "v1", "replicasets", "ReplicaSet", status=True, scale=("spec.replicas", "status.replicas")),
    Resource("events.k8s.io", "v1", "events", "Event"),
    Resource("coordination.k8s.io", "v1", "leases", "Lease"),
    Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", namespaced=False, status=True),
]


def dotted(obj, path):
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def set_dotted(obj, path, value):
    parts = path.split(".")
    for part in parts[:-1]:
        obj = obj.setdefault(part, {})
    obj[parts[-1]] = value


def label_matches(labels, selector):
    """Equality- and set-based label selectors (`a=b,c!=d,e,!f,g in (x,y),h notin (z)`)."""
    if not selector:
        return True
    labels = labels or {}
    terms, depth, current = [], 0, ""
    for ch in selector:
        if ch == "," and depth == 0:
            terms.append(current)
            current = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        current += ch
    terms.append(current)
    for term in (t.strip() for t in terms if t.strip()):
        if " notin " in term:
            key, values = term.split(" notin ", 1)
            if labels.get(key.strip()) in {v.strip() for v in values.strip("() ").split(",")}:
                return False
        elif " in " in term:
            key, values = term.split(" in ", 1)
            if labels.get(key.strip()) not in {v.strip() for v in values.strip("() ").split(",")}:
                return False
        elif "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def field_matches(obj, selector):
    """Field selectors on the fields Kubernetes supports for rask's kinds."""
    if not selector:
        return True
    for term in selector.split(","):
        negate = "!=" in term
        key, value = term.replace("==", "=").replace("!=", "=").split("=", 1)
        actual = dotted(obj, key.strip())
        actual = "" if actual is None else str(actual)
        if (actual == value.strip()) == negate:
            return False
    return True


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "rask-test-apiserver/1"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            super().log_message(fmt, *args)

    # -- plumbing ----------------------------------------------------------

    def send_json(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def fail(self, error):
        self.send_json(error.code, error.status())

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > 16 << 20:
            raise ApiError(413, "RequestEntityTooLarge", "request entity too large")
        raw = self.rfile.read(length) if length else b""
        kind = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        try:
            if kind in ("application/apply-patch+yaml", "application/yaml"):
                import yaml

                return kind, yaml.safe_load(raw) or {}
            return kind, json.loads(raw or b"{}")
        except ValueError as e:
            raise ApiError(400, "BadRequest", f"the body of the request could not be decoded: {e}")

    def route(self):
        """(resource, namespace, name, subresource, query) of the request."""
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        parts = [p for p in url.path.split("/") if p]
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, rest = "", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, rest = parts[1], parts[3:]
        else:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource {url.path}")
        namespace = None
        # /namespaces/NS/RESOURCE…, but /namespaces/NS/status is a namespace's own.
        if rest[:1] == ["namespaces"] and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        if not rest:
            raise ApiError(404, "NotFound", "no resource in the path")
        resource = self.server.store.resource(group, rest[0])
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if not resource.namespaced:
            namespace = None
        return resource, namespace, name, sub, query

    def guard(self, verb):
        try:
            verb()
        except ApiError as e:
            self.fail(e)
        except PatchError as e:
            self.fail(ApiError(e.code, "Invalid", str(e)))
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self):
        self.guard(self.get)

    def do_POST(self):
        self.guard(self.post)

    def do_PUT(self):
        self.guard(self.put)

    def do_PATCH(self):
        self.guard(self.patch)

    def do_DELETE(self):
        self.guard(self.delete)

    # -- verbs ---------------------------------------------------------------

    def get(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path in ("/version", "/version/"):
            return self.send_json(200, {"major": "1", "minor": "35", "gitVersion": "v1.35.0-rask-test-double"})
        resource, namespace, name, sub, query = self.route()
        store = self.server.store
        if name is None:
            if query.get("watch") in ("true", "1"):
                return self.watch(resource, namespace, query)
            return self.list(resource, namespace, query)
        obj = store.get(resource, namespace, name)
        if sub == "scale":
            return self.send_json(200, self.scale_of(resource, obj))
        self.send_json(200, obj)

    def list(self, resource, namespace, query):
        store = self.server.store
        token = query.get("continue")
        if token:
            pages = self.server.pages
            if token not in pages:
                raise ApiError(410, "Expired", "the provided continue parameter is too old")
            items, version = pages.pop(token)
        else:
            rv = query.get("resourceVersion")
            if query.get("resourceVersionMatch") == "Exact" and rv and int(rv) < store.oldest:
                raise ApiError(410, "Expired", f"too old resource version: {rv} ({store.oldest})")
            items, version = store.list(resource, namespace)
            items = [
                o
                for o in items
                if label_matches(o["metadata"].get("labels"), query.get("labelSelector"))
                and field_matches(o, query.get("fieldSelector"))
            ]
        limit = int(query.get("limit") or 0)
        meta = {"resourceVersion": str(version)}
        if limit and len(items) > limit:
            token = base64.urlsafe_b64encode(f"{version}:{time.monotonic_ns()}".encode()).decode()
            self.server.pages[token] = (items[limit:], version)
            meta["continue"] = token
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        self.send_json(
            200,
            {"kind": f"{resource.kind}List", "apiVersion": resource.api_version, "metadata": meta, "items": items},
        )

    def watch(self, resource, namespace, query):
        store = self.server.store
        labels, fields = query.get("labelSelector"), query.get("fieldSelector")
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        timeout = float(query.get("timeoutSeconds") or 1800)
        deadline = time.monotonic() + timeout
        rv = query.get("resourceVersion")
        initial = query.get("sendInitialEvents") in ("true", "1")

        def matches(obj):
            return (
                (namespace is None or obj["metadata"].get("namespace") == namespace)
                and label_matches(obj["metadata"].get("labels"), labels)
                and field_matches(obj, fields)
            )

        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def send(event):
            data = json.dumps(event).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def bookmark(version, extra=None):
            meta = {"resourceVersion": str(version)}
            if extra:
                meta["annotations"] = extra
            send({"type": "BOOKMARK", "object": {"kind": resource.kind, "apiVersion": resource.api_version, "metadata": meta}})

        try:
            with store.lock:
                if not rv or rv == "0" or initial:
                    items, since = store.list(resource, namespace)
                    for obj in items:
                        if matches(obj):
                            send({"type": "ADDED", "object": obj})
                    if initial and bookmarks:
                        bookmark(since, {"k8s.io/initial-events-end": "true"})
                else:
                    since = int(rv)
                    store.changes_since(resource, since)
            last_bookmark = time.monotonic()
            while time.monotonic() < deadline and not self.server.stopping:
                with store.lock:
                    try:
                        changes = store.changes_since(resource, since)
                    except ApiError as e:
                        send({"type": "ERROR", "object": e.status()})
                        break
                    if not changes:
                        store.changed.wait(timeout=min(0.5, max(0.0, deadline - time.monotonic())))
                        changes = store.changes_since(resource, since)
                    current = store.version
                for version, event, obj in changes:
                    since = version
                    if matches(obj):
                        send({"type": event, "object": obj})
                if bookmarks and time.monotonic() - last_bookmark >= self.server.bookmark_interval:
                    since = max(since, current) if not changes else since
                    bookmark(since)
                    last_bookmark = time.monotonic()
            self.wfile.write(b"0\r\n\r\n")
        except ApiError as e:
            send({"type": "ERROR", "object": e.status()})
            self.wfile.write(b"0\r\n\r\n")
        self.close_connection = True

    def post(self):
        resource, namespace, name, sub, query = self.route()
        _, obj = self.body()
        if name is not None:
            raise ApiError(405, "MethodNotAllowed", "POST to a named resource")
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the body is not an object")
        if query.get("dryRun") == "All":
            return self.send_json(201, obj)
        if resource.status:
            obj.pop("status", None)  # the status is the server's to set
        obj = self.server.admit(resource, obj)
        created = self.server.store.create(resource, namespace, obj)
        self.server.created(resource, created)
        self.send_json(201, created)

    def put(self):
        resource, namespace, name, sub, query = self.route()
        _, obj = self.body()
        if name is None:
            raise ApiError(405, "MethodNotAllowed", "PUT needs a name")
        store = self.server.store
        if sub == "scale":
            current = store.get(resource, namespace, name)
            updated = self.apply_scale(resource, current, obj)
            return self.send_json(200, self.scale_of(resource, updated))
        updated = store.update(resource, namespace, name, obj, subresource=sub)
        self.send_json(200, updated)

    def patch(self):
        resource, namespace, name, sub, query = self.route()
        kind, body = self.body()
        store = self.server.store
        if name is None:
            raise ApiError(405, "MethodNotAllowed", "PATCH needs a name")
        with store.lock:
            try:
                current = store.get(resource, namespace, name)
            except ApiError:
                if kind != "application/apply-patch+yaml":
                    raise
                # Server-side apply creates what is missing.
                body.setdefault("metadata", {})["name"] = name
                if resource.status:
                    body.pop("status", None)
                created = store.create(resource, namespace, self.server.admit(resource, body))
                self.server.created(resource, created)
                return self.send_json(201, created)
            target = self.scale_of(resource, current) if sub == "scale" else current
            if kind == "application/json-patch+json":
                patched = json_patch(target, body)
            elif kind == "application/merge-patch+json":
                patched = merge_patch(target, body)
            elif kind in ("application/strategic-merge-patch+json", "application/apply-patch+yaml"):
                patched = strategic_merge(target, body)
            else:
                raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format ({kind})")
            if sub == "scale":
                updated = self.apply_scale(resource, current, patched)
                return self.send_json(200, self.scale_of(resource, updated))
            # A patch only conflicts when it names a resourceVersion itself.
            wanted = dotted(body, "metadata.resourceVersion") if isinstance(body, dict) else None
            if not wanted:
                patched.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
            updated = store.update(resource, namespace, name, patched, subresource=sub)
        self.send_json(200, updated)

    def delete(self):
        resource, namespace, name, sub, query = self.route()
        _, options = self.body()
        options = options or {}
        propagation = query.get("propagationPolicy") or options.get("propagationPolicy")
        grace = query.get("gracePeriodSeconds", options.get("gracePeriodSeconds"))
        grace = None if grace is None else int(grace)
        uid = (options.get("preconditions") or {}).get("uid")
        store = self.server.store
        if name is None:
            items, _ = store.list(resource, namespace)
            deleted = []
            for obj in items:
                if label_matches(obj["metadata"].get("labels"), query.get("labelSelector")) and field_matches(
                    obj, query.get("fieldSelector")
                ):
                    try:
                        deleted.append(store.delete(resource, obj["metadata"].get("namespace"), obj["metadata"]["name"], propagation, grace))
                    except ApiError:
                        pass
            return self.send_json(200, {"kind": f"{resource.kind}List", "apiVersion": resource.api_version, "metadata": {}, "items": deleted})
        obj = store.delete(resource, namespace, name, propagation, grace, uid)
        if obj["metadata"].get("deletionTimestamp") and store_has(store, resource, namespace, name):
            return self.send_json(202 if resource.plural != "pods" else 200, obj)
        self.send_json(200, obj)

    # -- scale subresource ----------------------------------------------------

    def scale_of(self, resource, obj):
        if not resource.scale:
            raise ApiError(404, "NotFound", f"{resource.plural} has no scale subresource")
        spec_path, status_path = resource.scale
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": obj["metadata"]["name"],
                "namespace": obj["metadata"].get("namespace"),
                "uid": obj["metadata"]["uid"],
                "resourceVersion": obj["metadata"]["resourceVersion"],
                "creationTimestamp": obj["metadata"]["creationTimestamp"],
            },
            "spec": {"replicas": dotted(obj, spec_path) or 0},
            "status": {"replicas": dotted(obj, status_path) or 0},
        }

    def apply_scale(self, resource, current, scale):
        replicas = dotted(scale, "spec.replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiError(422, "Invalid", "Scale.spec.replicas: Invalid value: must be a non-negative integer")
        updated = copy.deepcopy(current)
        set_dotted(updated, resource.scale[0], replicas)
        wanted = dotted(scale, "metadata.resourceVersion")
        updated["metadata"]["resourceVersion"] = wanted or current["metadata"]["resourceVersion"]
        return self.server.store.update(resource, current["metadata"].get("namespace"), current["metadata"]["name"], updated)


def store_has(store, resource, namespace, name):
    try:
        store.get(resource, namespace, name)
        return True
    except ApiError:
        return False


class ApiServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, store, bookmark_interval=1.0, verbose=False):
        super().__init__(address, Handler)
        self.store = store
        self.bookmark_interval = bookmark_interval
        self.verbose = verbose
        self.stopping = False
        self.pages = {}
        # Called with (resource, object) before a create is stored: defaults
        # and allocations (a service's clusterIP) that the real server makes.
        self.admission = []
        for resource in BUILTIN:
            store.register(resource)

    def admit(self, resource, obj):
        for hook in self.admission:
            obj = hook(resource, obj)
        return obj

    def created(self, resource, obj):
        if resource.plural == "customresourcedefinitions":
            self.establish(obj)

    def establish(self, crd):
        """Serves the kind a CRD defines (its storage version), with the
        subresources it declares, and marks the CRD Established."""
        spec = crd["spec"]
        version = next((v for v in spec["versions"] if v.get("storage")), spec["versions"][0])
        subresources = version.get("subresources") or {}
        scale = subresources.get("scale")
        self.store.register(
            Resource(
                spec["group"],
                version["name"],
                spec["names"]["plural"],
                spec["names"]["kind"],
                namespaced=spec.get("scope") == "Namespaced",
                status="status" in subresources,
                scale=(scale["specReplicasPath"].lstrip("."), scale["statusReplicasPath"].lstrip(".")) if scale else None,
            )
        )
        crds = self.store.resource("apiextensions.k8s.io", "customresourcedefinitions")
        established = copy.deepcopy(self.store.get(crds, None, crd["metadata"]["name"]))
        established["status"] = {
            "acceptedNames": spec["names"],
            "storedVersions": [version["name"]],
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "lastTransitionTime": now()},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "lastTransitionTime": now()},
            ],
        }
        self.store.update(crds, None, crd["metadata"]["name"], established, subresource="status", check_version=False)


def serve(store, port=0, bookmark_interval=1.0, verbose=False):
    server = ApiServer(("127.0.0.1", port), store, bookmark_interval, verbose)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server
