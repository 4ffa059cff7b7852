#!/usr/bin/env python3
"""A test admission webhook for the e2e suite (what upstream's e2e tests get
from agnhost's `webhook` command): HTTPS on 127.0.0.1, a free port written to
the file given as the third argument.

  /mutate    labels the object mutated=yes (not on DELETE)
  /validate  refuses objects named 'forbidden' with a 403 and warns about
             the others ("validated <name>")

Usage: server.py CERT KEY PORT_FILE
"""
import base64
import http.server
import json
import ssl
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        review = json.loads(self.rfile.read(length) or b"{}")
        req = review.get("request") or {}
        obj = req.get("object") or {}
        name = (obj.get("metadata") or {}).get("name", "")
        path = self.path.split("?", 1)[0]
        resp = {"uid": req.get("uid", ""), "allowed": True}
        if path == "/mutate" and req.get("operation") != "DELETE":
            if (obj.get("metadata") or {}).get("labels"):
                patch = [{"op": "add", "path": "/metadata/labels/mutated", "value": "yes"}]
            else:
                patch = [{"op": "add", "path": "/metadata/labels", "value": {"mutated": "yes"}}]
            resp["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
            resp["patchType"] = "JSONPatch"
        elif path == "/validate" and name == "forbidden":
            resp["allowed"] = False
            resp["status"] = {"code": 403, "reason": "Forbidden",
                              "message": "objects named forbidden are not allowed"}
        elif path == "/validate":
            resp["warnings"] = ["validated " + name]
        body = json.dumps({"apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
                           "kind": "AdmissionReview", "response": resp}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    cert, key, port_file = sys.argv[1:4]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
