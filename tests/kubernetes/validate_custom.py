"""Validates RaskCluster and RaskJob manifests against the openAPIV3Schema of
the CRDs that define them (kubernetes-validate has schemas for Kubernetes'
own kinds only): python validate_custom.py CRDS.yaml MANIFEST.yaml...

Prints one line per resource; exits 1 if any fails or is of an unknown kind."""

import sys

import jsonschema
import yaml


def schemas(crds_path):
    found = {}
    with open(crds_path) as f:
        for crd in yaml.safe_load_all(f):
            group = crd["spec"]["group"]
            kind = crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                found[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return found


def unknown_fields(value, schema, where=""):
    """Fields the API server would reject under strict field validation (or
    prune): those not in the schema's properties, where it keeps no unknown ones."""
    if isinstance(value, dict) and schema.get("type") == "object":
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            return []
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        found = []
        for key, item in value.items():
            path = f"{where}.{key}" if where else key
            if props is not None and key in props:
                found += unknown_fields(item, props[key], path)
            elif isinstance(extra, dict):
                found += unknown_fields(item, extra, path)
            elif not (where == "" and key in ("apiVersion", "kind", "metadata")):
                found.append(path)
        return found
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [f for i, item in enumerate(value) for f in unknown_fields(item, schema["items"], f"{where}[{i}]")]
    return []


def main():
    known = schemas(sys.argv[1])
    failed = 0
    for path in sys.argv[2:]:
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if not doc or not doc.get("apiVersion", "").startswith("rask.dev/"):
                    continue
                name = f"{doc['kind'].lower()}/{doc['metadata']['name']}"
                schema = known.get((doc["apiVersion"], doc["kind"]))
                if schema is None:
                    print(f"ERROR {path}: no CRD defines {doc['apiVersion']} {doc['kind']}")
                    failed += 1
                    continue
                errors = [
                    (".".join(str(p) for p in e.path), e.message)
                    for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)
                ]
                errors += [(field, "unknown field") for field in unknown_fields(doc, schema)]
                for where, message in errors:
                    print(f"ERROR {path}: {name}: {where}: {message}")
                failed += bool(errors)
                if not errors:
                    print(f"INFO {path}: {name} passed against its CRD")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
