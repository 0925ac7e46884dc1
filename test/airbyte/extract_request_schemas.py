#!/usr/bin/env python3
"""
extract_request_schemas.py: cut, from Airbyte's public OpenAPI spec, the
request-body schemas of the endpoints the stand-in serves, so that the
stand-in can check every request the extension sends against them.

    python3 test/airbyte/extract_request_schemas.py SPEC.yaml > test/airbyte/request_schemas.json

SPEC.yaml is airbyte-api/server-api/src/main/openapi/api_sdk.yaml of
github.com/airbytehq/airbyte-platform (the file Airbyte's SDKs are
generated from; Elastic License 2.0, see LICENSE-ELv2.txt beside this
script).  The spec is 3.3 MB of YAML and takes seconds to parse; the
extract is plain JSON that the stand-in loads in milliseconds with the
standard library.

What is kept, unchanged:
  - "routes": route key ("POST /destinations") -> the name of its request
    body schema (DestinationCreateRequest, ...);
  - "schemas": those schemas and every schema they reference, except the
    OAuth app configuration union (OAuthCredentialsConfiguration: loose
    per-connector objects, of which any configuration matches several, so
    the oneOf cannot hold) and the two connector-configuration unions
    (SourceConfiguration, a oneOf of
    555 source-* schemas, and DestinationConfiguration, of 45);
  - "connectors": the source-* and destination-* schemas of the connector
    types the stand-in knows.  The stand-in validates a configuration
    against the one schema its sourceType / destinationType names, which
    is what the oneOf amounts to, with an error that says which field is
    wrong instead of "matches none of 45".
"""

import json
import sys

import yaml

ROUTES = {
    "POST /workspaces": ("/workspaces", "post"),
    "PATCH /workspaces/{id}": ("/workspaces/{workspaceId}", "patch"),
    "POST /sources": ("/sources", "post"),
    "PATCH /sources/{id}": ("/sources/{sourceId}", "patch"),
    "POST /sources/initiateOAuth": ("/sources/initiateOAuth", "post"),
    "POST /destinations": ("/destinations", "post"),
    "PATCH /destinations/{id}": ("/destinations/{destinationId}", "patch"),
    "POST /connections": ("/connections", "post"),
    "PATCH /connections/{id}": ("/connections/{connectionId}", "patch"),
    "POST /jobs": ("/jobs", "post"),
    "PUT /workspaces/{id}/oauthCredentials": ("/workspaces/{workspaceId}/oauthCredentials", "put"),
}
# OAuthCredentialsConfiguration is a oneOf of loose per-connector objects that
# an ordinary configuration matches several of; the stand-in checks its shape.
UNIONS = ("SourceConfiguration", "DestinationConfiguration", "OAuthCredentialsConfiguration")
CONNECTORS = [
    "source-shopify", "source-facebook-marketing", "source-google-ads",
    "source-faker", "source-postgres", "source-stripe", "source-hubspot",
    "source-file",
    "destination-postgres", "destination-bigquery", "destination-snowflake",
    "destination-s3", "destination-dev-null",
]


def collect(obj, schemas, keep):
    """Add every schema obj references (transitively) to keep."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "$ref" and isinstance(v, str) and v.startswith("#/components/schemas/"):
                name = v.rsplit("/", 1)[1]
                if name in UNIONS or name in keep:
                    continue
                keep[name] = schemas[name]
                collect(schemas[name], schemas, keep)
            else:
                collect(v, schemas, keep)
    elif isinstance(obj, list):
        for v in obj:
            collect(v, schemas, keep)


def main():
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(sys.argv[1]) as f:
        spec = yaml.load(f, Loader=loader)
    schemas = spec["components"]["schemas"]
    routes, keep = {}, {}
    for key, (path, method) in ROUTES.items():
        ref = spec["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        name = ref.rsplit("/", 1)[1]
        routes[key] = name
        keep[name] = schemas[name]
        collect(schemas[name], schemas, keep)
    connectors = {}
    for name in CONNECTORS:
        connectors[name] = schemas[name]
        collect(schemas[name], schemas, keep)
    for u in UNIONS:
        keep[u] = {"type": "object", "description": "checked per connector type, see connectors"}
    json.dump({"source": "airbyte-platform api_sdk.yaml (Elastic License 2.0)",
               "openapi": spec.get("openapi"),
               "routes": routes, "schemas": keep, "connectors": connectors},
              sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
