#!/usr/bin/env python3
"""Extract the slice of Apple's App Store Connect OpenAPI spec that flightdeck uses.

Writes spec/asc-openapi.json: the operations below (request and response schemas and
parameters) plus the transitive closure of the component schemas they reference. The
simulator embeds this file to validate every request it receives, and the tests validate
every response it sends, so a fresh clone tests against Apple's contract without ../shared.

Usage: scripts/vendor-spec.py [path/to/app-store-connect-openapi.json]
"""
import json, os, sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "../../shared/spec/app-store-connect-openapi.json")
OUT = os.path.join(HERE, "../spec/asc-openapi.json")

OPERATIONS = [
    ("get", "/v1/apps"), ("get", "/v1/apps/{id}"),
    ("post", "/v1/buildUploads"), ("get", "/v1/buildUploads/{id}"), ("delete", "/v1/buildUploads/{id}"),
    ("get", "/v1/buildUploads/{id}/buildUploadFiles"),
    ("post", "/v1/buildUploadFiles"), ("get", "/v1/buildUploadFiles/{id}"), ("patch", "/v1/buildUploadFiles/{id}"),
    ("get", "/v1/apps/{id}/buildUploads"),
    ("get", "/v1/builds"), ("get", "/v1/builds/{id}"), ("patch", "/v1/builds/{id}"),
    ("post", "/v1/builds/{id}/relationships/betaGroups"),
    ("get", "/v1/apps/{id}/betaGroups"),
    ("post", "/v1/betaBuildLocalizations"), ("patch", "/v1/betaBuildLocalizations/{id}"),
    ("get", "/v1/builds/{id}/betaBuildLocalizations"),
    ("post", "/v1/betaAppReviewSubmissions"),
    ("get", "/v1/builds/{id}/buildBetaDetail"), ("patch", "/v1/buildBetaDetails/{id}"),
    ("post", "/v1/buildBetaNotifications"),
    ("post", "/v1/webhooks"), ("get", "/v1/webhooks/{id}"), ("patch", "/v1/webhooks/{id}"),
    ("delete", "/v1/webhooks/{id}"), ("get", "/v1/apps/{id}/webhooks"),
    ("get", "/v1/webhooks/{id}/deliveries"), ("post", "/v1/webhookDeliveries"), ("post", "/v1/webhookPings"),
    ("get", "/v1/apps/{id}/betaFeedbackCrashSubmissions"),
    ("get", "/v1/apps/{id}/betaFeedbackScreenshotSubmissions"),
    ("get", "/v1/betaFeedbackCrashSubmissions/{id}"), ("get", "/v1/betaFeedbackScreenshotSubmissions/{id}"),
    ("get", "/v1/betaFeedbackCrashSubmissions/{id}/crashLog"),
    # TestFlight audience: groups, testers, invitations, relationships, build expiry.
    ("post", "/v1/betaGroups"), ("get", "/v1/betaGroups/{id}"), ("patch", "/v1/betaGroups/{id}"),
    ("get", "/v1/betaGroups/{id}/betaTesters"),
    ("post", "/v1/betaGroups/{id}/relationships/betaTesters"),
    ("delete", "/v1/betaGroups/{id}/relationships/betaTesters"),
    ("get", "/v1/betaTesters"), ("post", "/v1/betaTesters"), ("delete", "/v1/betaTesters/{id}"),
    ("delete", "/v1/apps/{id}/relationships/betaTesters"),
    ("post", "/v1/betaTesterInvitations"),
    ("get", "/v1/betaAppReviewSubmissions"),
]

def main():
    spec = json.load(open(SRC))
    schemas = spec["components"]["schemas"]
    paths, wanted = {}, set()

    def refs(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref" and isinstance(v, str) and v.startswith("#/components/schemas/"):
                    yield v.rsplit("/", 1)[1]
                else:
                    yield from refs(v)
        elif isinstance(node, list):
            for x in node:
                yield from refs(x)

    for method, path in OPERATIONS:
        op = spec["paths"][path][method]
        slim = {"operationId": op.get("operationId"), "parameters": op.get("parameters", []),
                "responses": {}}
        if "requestBody" in op:
            slim["requestBody"] = op["requestBody"]["content"]["application/json"]["schema"]
        for status, resp in op["responses"].items():
            content = resp.get("content", {}).get("application/json")
            slim["responses"][status] = content["schema"] if content else None
        paths.setdefault(path, {})[method] = slim
        wanted.update(refs(slim))

    todo = list(wanted)
    while todo:
        name = todo.pop()
        for r in refs(schemas[name]):
            if r not in wanted:
                wanted.add(r)
                todo.append(r)

    out = {"info": {"title": spec["info"]["title"], "version": spec["info"]["version"],
                    "x-extracted-by": "scripts/vendor-spec.py"},
           "paths": paths,
           "components": {"schemas": {k: schemas[k] for k in sorted(wanted)}}}
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {OUT}: {len(paths)} paths, {len(wanted)} schemas")

if __name__ == "__main__":
    main()
