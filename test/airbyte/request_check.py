"""
request_check.py: checks a request body the extension sent against the
request schema Airbyte's OpenAPI spec gives for that endpoint
(request_schemas.json, cut from the spec by extract_request_schemas.py).

A connector configuration (a source's or a destination's) is checked
against the one connector schema its sourceType / destinationType names,
when the extract has it; other types pass with only the envelope checked.

    python3 test/airbyte/request_check.py "POST /destinations" < body.json

Uses python3-jsonschema (Debian's package); the spec is OpenAPI 3.1, whose
schemas are JSON Schema 2020-12.
"""

import json
import os

import jsonschema

HERE = os.path.dirname(os.path.abspath(__file__))

# Routes with a request body that the spec gives no schema for, and why.
# Every other route that takes a body must be in request_schemas.json
# (extract_request_schemas.py's ROUTES): the stand-in refuses a body on a
# route that is neither, so a request the extension starts sending cannot
# go unchecked.
NO_SCHEMA = {
    "POST /applications/token": "the spec names it only as its OAuth2 security scheme's tokenUrl",
    "POST /auth/vendor": "Frontegg's vendor token, not Airbyte's API",
}


class RequestCheck:
    def __init__(self, path=os.path.join(HERE, "request_schemas.json")):
        with open(path) as f:
            extract = json.load(f)
        self.routes = extract["routes"]
        components = {"schemas": extract["schemas"]}
        self.validators = {}
        for route, name in self.routes.items():
            doc = {"$ref": "#/components/schemas/" + name, "components": components}
            self.validators[route] = jsonschema.Draft202012Validator(doc)
        self.connectors = {name: jsonschema.Draft202012Validator(schema)
                           for name, schema in extract["connectors"].items()}

    def unchecked(self, route):
        """Whether a body sent to route has no schema to be checked against
        (and the route is not one of NO_SCHEMA)."""
        return route not in self.routes and route not in NO_SCHEMA

    def problems(self, route, body):
        """Every way body breaks the spec's request schema for route, as
        "field: message" strings; [] when it conforms or the route has none."""
        v = self.validators.get(route)
        if v is None:
            return []
        out = [self.describe(e) for e in v.iter_errors(body)]
        if isinstance(body, dict) and isinstance(body.get("configuration"), dict):
            cfg = body["configuration"]
            for kind in ("source", "destination"):
                t = cfg.get(kind + "Type")
                cv = self.connectors.get("%s-%s" % (kind, t)) if isinstance(t, str) else None
                if cv is not None:
                    out += [self.describe(e, "configuration") for e in cv.iter_errors(cfg)
                            if not self.filled_by_secret(body, e)]
        return out

    @staticmethod
    def filled_by_secret(body, error):
        """With a top-level secretId (an OAuth consent), Airbyte fills the
        configuration's credentials in itself: their absence is no error."""
        return (body.get("secretId") is not None and error.validator == "required"
                and not list(error.absolute_path) and "'credentials'" in error.message)

    @staticmethod
    def describe(error, prefix=None):
        parts = ([prefix] if prefix else []) + [str(p) for p in error.absolute_path]
        where = ".".join(parts) or "(body)"
        return "%s: %s" % (where, error.message)


def main(argv):
    """request_check.py ROUTE < body.json: prints "ok", or each problem."""
    with open(0) as f:
        body = json.load(f)
    problems = RequestCheck().problems(argv[1], body)
    print("\n".join(problems) if problems else "ok")
    return 1 if problems else 0


if __name__ == "__main__":
    import sys
    sys.exit(main(sys.argv))
