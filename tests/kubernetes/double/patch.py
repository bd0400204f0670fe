"""The patch formats of the Kubernetes API: JSON merge patch (RFC 7386), JSON
patch (RFC 6902, with `test`), and strategic merge and server-side apply as
far as rask's resources need them (see README: lists are replaced, as merge
patch does, except lists of named items, merged by name)."""

import copy


class PatchError(Exception):
    """A patch that cannot apply (the API answers 422, or 409 for a failed `test`)."""

    def __init__(self, message, code=422):
        super().__init__(message)
        self.code = code


def merge_patch(target, patch):
    """RFC 7386: objects merge key by key, `null` removes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _named(items):
    return isinstance(items, list) and items and all(isinstance(i, dict) and "name" in i for i in items)


def strategic_merge(target, patch):
    """Strategic merge: as merge patch, but lists of items with a `name`
    (containers, env, ports, volumes) merge item by item, by name."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        elif _named(value) and _named(result.get(key)):
            merged = {item["name"]: item for item in result[key]}
            order = [item["name"] for item in result[key]]
            for item in value:
                if item["name"] not in merged:
                    order.append(item["name"])
                merged[item["name"]] = strategic_merge(merged.get(item["name"]), item)
            result[key] = [merged[n] for n in order]
        else:
            result[key] = strategic_merge(result.get(key), value)
    return result


def _pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"bad JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc, parts, path):
    node = doc
    for part in parts[:-1]:
        if isinstance(node, list):
            try:
                node = node[int(part)]
            except (ValueError, IndexError):
                raise PatchError(f"path {path!r} does not exist")
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise PatchError(f"path {path!r} does not exist")
    return node


def _get(doc, path):
    parts = _pointer(path)
    if not parts:
        return doc
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, list):
        try:
            return parent[int(last)]
        except (ValueError, IndexError):
            raise PatchError(f"path {path!r} does not exist")
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    raise PatchError(f"path {path!r} does not exist")


def _add(doc, path, value):
    parts = _pointer(path)
    if not parts:
        return value
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            try:
                index = int(last)
            except ValueError:
                raise PatchError(f"bad index in {path!r}")
            if not 0 <= index <= len(parent):
                raise PatchError(f"index out of range in {path!r}")
            parent.insert(index, value)
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise PatchError(f"path {path!r} does not exist")
    return doc


def _remove(doc, path):
    parts = _pointer(path)
    parent = _parent(doc, parts, path)
    last = parts[-1]
    try:
        if isinstance(parent, list):
            del parent[int(last)]
        else:
            del parent[last]
    except (KeyError, ValueError, IndexError, TypeError):
        raise PatchError(f"path {path!r} does not exist")
    return doc


def json_patch(target, operations):
    """RFC 6902: add, remove, replace, move, copy and test, all or nothing."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch is a list of operations")
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"bad JSON patch operation {op!r}")
        kind, path = op["op"], op["path"]
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            doc = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)
            doc = _remove(doc, path) if _pointer(path) else doc
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind in ("move", "copy"):
            value = copy.deepcopy(_get(doc, op["from"]))
            if kind == "move":
                doc = _remove(doc, op["from"])
            doc = _add(doc, path, value)
        elif kind == "test":
            try:
                found = _get(doc, path)
            except PatchError:
                # As the API server's JSON patch: a missing path tests equal to null.
                if op.get("value") is not None:
                    raise
                found = None
            if found != op.get("value"):
                raise PatchError(f"test failed at {path!r}", code=422)
        else:
            raise PatchError(f"unknown JSON patch operation {kind!r}")
    return doc
