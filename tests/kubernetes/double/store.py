"""The API server's object store: one resourceVersion counter for everything,
a bounded history of changes that watches resume from (older versions are
gone: 410 Expired), optimistic concurrency (409 Conflict), generation,
finalizers that hold deletion, and the garbage collector that follows owner
references (background, foreground and orphan deletion)."""

import base64
import collections
import copy
import threading
import time
import uuid


class ApiError(Exception):
    """An API error: its HTTP code and Kubernetes reason."""

    def __init__(self, code, reason, message):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message

    def status(self):
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Resource:
    """A kind the server serves: where it lives in the URL space and how it behaves."""

    def __init__(self, group, version, plural, kind, namespaced=True, status=False, scale=None):
        self.group = group
        self.version = version
        self.plural = plural
        self.kind = kind
        self.namespaced = namespaced
        # Whether /status is a subresource (then writes to the main resource keep the status).
        self.status = status
        # For a scale subresource: (spec replicas path, status replicas path), as dotted paths.
        self.scale = scale

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version


class Store:
    """Every object, keyed by (resource plural with group, namespace, name)."""

    def __init__(self, history=500):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.objects = {}
        self.version = 0
        # (resourceVersion, event type, resource key, object) of recent changes.
        self.history = collections.deque(maxlen=history)
        # The oldest version a watch may resume from.
        self.oldest = 0
        self.resources = {}

    def register(self, resource):
        with self.lock:
            self.resources[(resource.group, resource.plural)] = resource

    def resource(self, group, plural):
        with self.lock:
            found = self.resources.get((group, plural))
        if found is None:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({plural}.{group})")
        return found

    # -- changes -------------------------------------------------------

    def _bump(self, event, resource, obj):
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        if len(self.history) == self.history.maxlen:
            self.oldest = self.history[0][0]
        self.history.append((self.version, event, (resource.group, resource.plural), copy.deepcopy(obj)))
        self.changed.notify_all()

    def compact(self):
        """Forgets the history: every watch from an older version gets 410."""
        with self.lock:
            self.history.clear()
            self.oldest = self.version

    def key(self, resource, namespace, name):
        return ((resource.group, resource.plural), namespace if resource.namespaced else "", name)

    def get(self, resource, namespace, name):
        with self.lock:
            obj = self.objects.get(self.key(resource, namespace, name))
            if obj is None:
                raise ApiError(404, "NotFound", f'{resource.plural}.{resource.group or "core"} "{name}" not found')
            return copy.deepcopy(obj)

    def list(self, resource, namespace=None):
        with self.lock:
            items = [
                copy.deepcopy(obj)
                for (res, ns, _), obj in self.objects.items()
                if res == (resource.group, resource.plural) and (namespace is None or ns == namespace)
            ]
            return sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])), self.version

    def create(self, resource, namespace, obj):
        with self.lock:
            meta = obj.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            if not meta.get("name"):
                raise ApiError(422, "Invalid", f"{resource.kind}: metadata.name: Required value")
            if resource.namespaced:
                if meta.get("namespace") not in (None, namespace):
                    raise ApiError(400, "BadRequest", "the namespace of the object does not match the namespace of the request")
                meta["namespace"] = namespace
                if resource.plural != "namespaces" and not self._namespace_exists(namespace):
                    raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found')
            key = self.key(resource, namespace, meta["name"])
            if key in self.objects:
                raise ApiError(409, "AlreadyExists", f'{resource.plural}.{resource.group or "core"} "{meta["name"]}" already exists')
            obj["apiVersion"] = resource.api_version
            obj["kind"] = resource.kind
            self._normalize(resource, obj)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now()
            meta["generation"] = 1
            meta.pop("deletionTimestamp", None)
            meta.pop("resourceVersion", None)
            self.objects[key] = obj
            self._bump("ADDED", resource, obj)
            return copy.deepcopy(obj)

    @staticmethod
    def _normalize(resource, obj):
        """What the API server does to a Secret on every write: `stringData`
        is merged into `data` (base64, winning over `data`) and not kept."""
        if resource.group == "" and resource.plural == "secrets" and "stringData" in obj:
            data = obj.setdefault("data", {}) or {}
            for key, value in (obj.pop("stringData") or {}).items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            obj["data"] = data

    def _namespace_exists(self, namespace):
        return (("", "namespaces"), "", namespace) in self.objects

    def update(self, resource, namespace, name, obj, subresource=None, check_version=True):
        """Replaces an object (PUT, and patches once applied): 409 on a stale
        resourceVersion; with a status subresource, the main resource keeps its
        status and /status changes only the status."""
        with self.lock:
            key = self.key(resource, namespace, name)
            current = self.objects.get(key)
            if current is None:
                raise ApiError(404, "NotFound", f'{resource.plural}.{resource.group or "core"} "{name}" not found')
            meta = obj.setdefault("metadata", {})
            if meta.get("name", name) != name:
                raise ApiError(400, "BadRequest", "the name of the object does not match the name in the URL")
            wanted = meta.get("resourceVersion")
            if check_version and wanted and wanted != current["metadata"]["resourceVersion"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {resource.plural}.{resource.group or "core"} "{name}": '
                    "the object has been modified; please apply your changes to the latest version and try again",
                )
            new = copy.deepcopy(current)
            if subresource == "status":
                if "status" in obj:
                    new["status"] = obj["status"]
                else:
                    new.pop("status", None)
            else:
                for field in list(new):
                    if field not in ("metadata", "apiVersion", "kind") and not (resource.status and field == "status"):
                        new.pop(field)
                for field, value in obj.items():
                    if field in ("metadata", "apiVersion", "kind") or (resource.status and field == "status"):
                        continue
                    new[field] = value
                self._normalize(resource, new)
                # Metadata users may change; the rest is the server's.
                for field in ("labels", "annotations", "finalizers", "ownerReferences"):
                    if field in meta:
                        new["metadata"][field] = meta[field]
                    else:
                        new["metadata"].pop(field, None)
                if self._spec(new) != self._spec(current):
                    new["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
            if new == current:
                return copy.deepcopy(current)
            # A pod on a node stays until its kubelet has stopped it (and deletes it).
            on_node = (
                resource.plural == "pods"
                and new.get("spec", {}).get("nodeName")
                and new["metadata"].get("deletionGracePeriodSeconds") != 0
            )
            if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers") and not on_node:
                del self.objects[key]
                self._bump("DELETED", resource, new)
                self._collect(new)
                return copy.deepcopy(new)
            self.objects[key] = new
            self._bump("MODIFIED", resource, new)
            return copy.deepcopy(new)

    @staticmethod
    def _spec(obj):
        return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}

    def delete(self, resource, namespace, name, propagation=None, grace=None, precondition_uid=None):
        """Deletes an object, or marks it for deletion while finalizers (or,
        for pods on a node, the kubelet) hold it."""
        with self.lock:
            key = self.key(resource, namespace, name)
            current = self.objects.get(key)
            if current is None:
                raise ApiError(404, "NotFound", f'{resource.plural}.{resource.group or "core"} "{name}" not found')
            if precondition_uid and current["metadata"]["uid"] != precondition_uid:
                raise ApiError(409, "Conflict", "Precondition failed: UID in precondition does not match")
            meta = current["metadata"]
            if propagation is None:
                propagation = "Background"
            finalizers = list(meta.get("finalizers") or [])
            if propagation == "Foreground" and self._dependents(meta["uid"]) and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            if propagation == "Orphan":
                for dependent in self._dependents(meta["uid"]):
                    self._drop_owner(dependent, meta["uid"])
            held_by_kubelet = resource.plural == "pods" and current.get("spec", {}).get("nodeName") and grace != 0
            if finalizers or held_by_kubelet:
                if meta.get("deletionTimestamp") and grace == 0 and meta.get("deletionGracePeriodSeconds") != 0:
                    # The kubelet has stopped the pod: only finalizers hold it now.
                    new = copy.deepcopy(current)
                    new["metadata"]["deletionGracePeriodSeconds"] = 0
                    self.objects[key] = new
                    self._bump("MODIFIED", resource, new)
                    return copy.deepcopy(new)
                if not meta.get("deletionTimestamp"):
                    new = copy.deepcopy(current)
                    new["metadata"]["deletionTimestamp"] = now()
                    new["metadata"]["finalizers"] = finalizers
                    if held_by_kubelet:
                        grace_period = grace
                        if grace_period is None:
                            grace_period = current.get("spec", {}).get("terminationGracePeriodSeconds", 30)
                        new["metadata"]["deletionGracePeriodSeconds"] = grace_period
                    if not finalizers:
                        new["metadata"].pop("finalizers", None)
                    self.objects[key] = new
                    self._bump("MODIFIED", resource, new)
                    if propagation == "Foreground":
                        for dependent in self._dependents(meta["uid"]):
                            self._delete_object(dependent, "Foreground")
                    return copy.deepcopy(new)
                return copy.deepcopy(current)
            del self.objects[key]
            self._bump("DELETED", resource, current)
            if propagation != "Orphan":
                self._collect(current)
            return copy.deepcopy(current)

    # -- garbage collection ---------------------------------------------

    def _dependents(self, uid):
        return [
            key
            for key, obj in self.objects.items()
            if any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])
        ]

    def _resource_of(self, key):
        return self.resources[key[0]]

    def _drop_owner(self, key, uid):
        obj = copy.deepcopy(self.objects[key])
        refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
        if refs:
            obj["metadata"]["ownerReferences"] = refs
        else:
            obj["metadata"].pop("ownerReferences", None)
        self.objects[key] = obj
        self._bump("MODIFIED", self._resource_of(key), obj)

    def _delete_object(self, key, propagation):
        obj = self.objects.get(key)
        if obj is None:
            return
        resource = self._resource_of(key)
        try:
            self.delete(resource, key[1], key[2], propagation=propagation)
        except ApiError:
            pass

    def _collect(self, deleted):
        """After an owner is gone: dependents whose every owner is gone are
        deleted (background); an owner waiting in foreground deletion for its
        last dependent is released."""
        uid = deleted["metadata"]["uid"]
        for key in self._dependents(uid):
            obj = self.objects.get(key)
            if obj is None:
                continue
            owners = obj["metadata"].get("ownerReferences") or []
            alive = [r for r in owners if r.get("uid") != uid and self._uid_exists(r.get("uid"))]
            if alive:
                self._drop_owner(key, uid)
            else:
                self._delete_object(key, "Background")
        for owner_ref in deleted["metadata"].get("ownerReferences") or []:
            owner_key = self._key_of_uid(owner_ref.get("uid"))
            if owner_key is None:
                continue
            owner = self.objects[owner_key]
            if "foregroundDeletion" in (owner["metadata"].get("finalizers") or []) and not self._dependents(owner_ref["uid"]):
                released = copy.deepcopy(owner)
                released["metadata"]["finalizers"] = [f for f in owner["metadata"]["finalizers"] if f != "foregroundDeletion"]
                self.update(self._resource_of(owner_key), owner_key[1], owner_key[2], released, check_version=False)

    def _uid_exists(self, uid):
        return self._key_of_uid(uid) is not None

    def _key_of_uid(self, uid):
        for key, obj in self.objects.items():
            if obj["metadata"]["uid"] == uid:
                return key
        return None

    # -- watches ---------------------------------------------------------

    def changes_since(self, resource, version):
        """Changes to `resource` after `version`, or ApiError 410 when the
        history no longer reaches back that far."""
        with self.lock:
            if version < self.oldest:
                raise ApiError(410, "Expired", f"too old resource version: {version} ({self.oldest})")
            return [
                (rv, event, copy.deepcopy(obj))
                for rv, event, key, obj in self.history
                if rv > version and key == (resource.group, resource.plural)
            ]
