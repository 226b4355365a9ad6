#!/usr/bin/env python3
"""An in-memory Kubernetes API server for gpurm's Kubernetes tests.

It speaks the subset of the API gpurm uses, with the API server's semantics
and the exact shapes of its answers (the error Status objects, list
envelopes, watch events and bookmarks below were recorded from
kube-apiserver v1.33.4; tests/kube/recorded/ holds the recordings):

- objects get metadata.uid, creationTimestamp and a resourceVersion from one
  global counter, like etcd revisions;
- GET of a collection lists it (labelSelector, fieldSelector, limit and
  continue tokens; a token older than the kept history answers 410 Expired);
- ?watch=1 streams ADDED/MODIFIED/DELETED events after resourceVersion,
  BOOKMARK events when allowWatchBookmarks=true, an ERROR event with a 410
  Status when the version is older than the kept history (--history), and
  DELETED when an object stops matching the field selector;
- POST creates (409 AlreadyExists), PUT replaces with optimistic
  concurrency on metadata.resourceVersion (409 Conflict), PUT .../status
  writes the status subresource of nodes, pods and jobs, DELETE deletes;
- POST /compact forgets the event history (tests use it to force a 410).

Used only where the real kube-apiserver (tests/kube/build-apiserver.sh) is
not available; tests/kube/README.md says why. Plain HTTP on 127.0.0.1.
"""

import argparse
import base64
import copy
import datetime
import http.server
import json
import re
import sys
import threading
import time
import urllib.parse
import uuid

# Resources with a status subresource: a PUT of the object keeps the stored
# status; PUT .../status changes only it.
STATUS_SUBRESOURCE = {"nodes", "pods", "jobs", "customresourcedefinitions"}
KINDS = {
    "nodes": ("Node", "", "v1"),
    "pods": ("Pod", "", "v1"),
    "leases": ("Lease", "coordination.k8s.io", "v1"),
    "jobs": ("Job", "batch", "v1"),
    "services": ("Service", "", "v1"),
    "gpuallocations": ("GpuAllocation", "gpurm.io", "v1alpha1"),
    "customresourcedefinitions": ("CustomResourceDefinition", "apiextensions.k8s.io", "v1"),
    "namespaces": ("Namespace", "", "v1"),
}
PATH = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<resource>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>status))?$")


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_body(code, reason, message, details=None):
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason}
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def qualified(resource, group):
    return resource + ("." + group if group else "")


class Store:
    def __init__(self, history):
        self.lock = threading.Condition()
        self.rv = 100
        self.objects = {}  # (resource, ns, name) -> object
        self.events = []   # (rv, resource, type, object, previous)
        self.oldest = self.rv  # Oldest version a watch may start from.
        self.history = history

    def record(self, resource, type_, obj, previous):
        self.events.append((self.rv, resource, type_, copy.deepcopy(obj), previous))
        if len(self.events) > self.history:
            dropped = self.events[: len(self.events) - self.history]
            self.events = self.events[len(self.events) - self.history:]
            self.oldest = dropped[-1][0]
        self.lock.notify_all()

    def compact(self):
        # Like an etcd compaction past every version handed out so far: every
        # watch in flight, and any new one from an older version, gets 410.
        with self.lock:
            self.events = []
            self.rv += 1
            self.oldest = self.rv
            self.lock.notify_all()


def label_matches(selector, labels):
    if not selector:
        return True
    for term in selector.split(","):
        term = term.strip()
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.split("=", 1)
            if labels.get(k.rstrip("=")) != v:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def field_value(obj, path):
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part, "")
    return cur if isinstance(cur, str) else ""


def field_matches(selector, obj):
    if not selector:
        return True
    for term in selector.split(","):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if field_value(obj, k) == v:
                return False
        elif "=" in term:
            k, v = term.split("=", 1)
            if field_value(obj, k.rstrip("=")) != v:
                return False
    return True


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    store = None
    bookmark_interval = 1.0

    def log_message(self, fmt, *args):  # Quiet: tests read the client's view.
        pass

    def send_json(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def route(self):
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        m = PATH.match(url.path)
        if not m:
            return None, query
        group = m.group("group") or ""
        return dict(group=group, version=m.group("core") or m.group("version"), ns=m.group("ns") or "",
                    resource=m.group("resource"), name=m.group("name"), sub=m.group("sub")), query

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def not_found(self, r):
        kind = qualified(r["resource"], r["group"])
        self.send_json(404, status_body(404, "NotFound", '%s "%s" not found' % (kind, r["name"]),
                                        {"name": r["name"], "group": r["group"] or None,
                                         "kind": r["resource"]}
                                        if r["group"] else {"name": r["name"], "kind": r["resource"]}))

    # --- verbs -------------------------------------------------------------

    def do_GET(self):
        r, query = self.route()
        if r is None:
            return self.send_json(404, status_body(404, "NotFound", "the server could not find the requested resource"))
        store = self.store
        if r["name"]:
            with store.lock:
                obj = store.objects.get((r["resource"], r["ns"], r["name"]))
                obj = copy.deepcopy(obj)
            return self.send_json(200, obj) if obj else self.not_found(r)
        if query.get("watch") in ("1", "true"):
            return self.watch(r, query)
        return self.list(r, query)

    def matching(self, r, query, obj):
        meta = obj["metadata"]
        if r["ns"] and meta.get("namespace", "") != r["ns"]:
            return False
        return (label_matches(query.get("labelSelector", ""), meta.get("labels", {})) and
                field_matches(query.get("fieldSelector", ""), obj))

    def list(self, r, query):
        store = self.store
        kind, group, version = KINDS.get(r["resource"], ("Unknown", r["group"], r["version"]))
        limit = int(query.get("limit", "0") or 0)
        offset = 0
        with store.lock:
            rv = store.rv
            if query.get("continue"):
                token = json.loads(base64.b64decode(query["continue"]))
                if token["rv"] < store.oldest:
                    return self.send_json(410, status_body(
                        410, "Expired",
                        "The provided continue parameter is too old to display a consistent list "
                        "result. You can start a new list without the continue parameter, or use the "
                        "continue token in this response to retrieve the remainder of the results. "
                        "Continuing with the provided token results in an inconsistent list - objects "
                        "that were created, modified, or deleted between the time the first chunk was "
                        "returned and now may show up in the list."))
                rv, offset = token["rv"], token["offset"]
            items = [copy.deepcopy(o) for (res, ns, name), o in sorted(store.objects.items())
                     if res == r["resource"] and self.matching(r, query, o)]
        metadata = {"resourceVersion": str(rv)}
        page = items[offset:]
        if limit and len(page) > limit:
            page = page[:limit]
            metadata["continue"] = base64.b64encode(json.dumps(
                {"rv": rv, "offset": offset + limit}).encode()).decode()
            metadata["remainingItemCount"] = len(items) - offset - limit
        api_version = (group + "/" if group else "") + version
        self.send_json(200, {"kind": kind + "List", "apiVersion": api_version,
                             "metadata": metadata, "items": page})

    def watch(self, r, query):
        store = self.store
        kind, group, version = KINDS.get(r["resource"], ("Unknown", r["group"], r["version"]))
        api_version = (group + "/" if group else "") + version
        timeout = float(query.get("timeoutSeconds", "300"))
        bookmarks = query.get("allowWatchBookmarks") == "true"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def emit(event):
            data = (json.dumps(event) + "\n").encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        start_rv = query.get("resourceVersion", "")
        deadline = time.monotonic() + timeout
        try:
            with store.lock:
                if start_rv in ("", "0"):
                    position = store.rv
                    initial = [copy.deepcopy(o) for (res, _, _), o in sorted(store.objects.items())
                               if res == r["resource"] and self.matching(r, query, o)]
                else:
                    position = int(start_rv)
                    initial = []
                    if position < store.oldest:
                        emit({"type": "ERROR", "object": status_body(
                            410, "Expired", "too old resource version: %d (%d)" % (position, store.oldest))})
                        self.wfile.write(b"0\r\n\r\n")
                        return
            for obj in initial:
                emit({"type": "ADDED", "object": obj})
            last_bookmark = time.monotonic()
            while time.monotonic() < deadline:
                with store.lock:
                    if position < store.oldest:
                        emit({"type": "ERROR", "object": status_body(
                            410, "Expired", "too old resource version: %d (%d)" % (position, store.oldest))})
                        break
                    pending = [e for e in store.events if e[0] > position and e[1] == r["resource"]]
                    # Nothing of ours up to here: later events start past it.
                    current = store.rv
                    if not pending:
                        store.lock.wait(min(0.2, max(0.0, deadline - time.monotonic())))
                for rv, _, type_, obj, previous in pending:
                    position = rv
                    now_matches = self.matching(r, query, obj)
                    was_matching = previous is not None and self.matching(r, query, previous)
                    if type_ == "DELETED":
                        if was_matching or now_matches:
                            emit({"type": "DELETED", "object": obj})
                    elif now_matches:
                        emit({"type": "ADDED" if type_ == "ADDED" or not was_matching else "MODIFIED",
                              "object": obj})
                    elif was_matching:
                        emit({"type": "DELETED", "object": obj})
                if not pending:
                    position = max(position, current)
                if bookmarks and time.monotonic() - last_bookmark >= self.bookmark_interval:
                    emit({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version,
                                                         "metadata": {"resourceVersion": str(position),
                                                                      "creationTimestamp": None}}})
                    last_bookmark = time.monotonic()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_POST(self):
        if self.path == "/compact":
            self.store.compact()
            return self.send_json(200, {})
        r, _ = self.route()
        if r is None or r["name"]:
            return self.send_json(405, status_body(405, "MethodNotAllowed", "the server does not allow this method on the requested resource"))
        obj = self.read_body()
        meta = obj.setdefault("metadata", {})
        if r["ns"]:
            meta["namespace"] = r["ns"]
        name = meta.get("name", "")
        if not name and meta.get("generateName"):
            name = meta["generateName"] + uuid.uuid4().hex[:5]
            meta["name"] = name
        store = self.store
        kind = qualified(r["resource"], r["group"])
        with store.lock:
            key = (r["resource"], r["ns"], name)
            if key in store.objects:
                return self.send_json(409, status_body(
                    409, "AlreadyExists", '%s "%s" already exists' % (kind, name),
                    dict({"name": name}, **({"group": r["group"]} if r["group"] else {}), kind=r["resource"])))
            store.rv += 1
            meta["uid"] = str(uuid.uuid4())
            meta["resourceVersion"] = str(store.rv)
            meta["creationTimestamp"] = now()
            if r["resource"] in ("jobs", "gpuallocations", "customresourcedefinitions"):
                meta["generation"] = 1
            if r["resource"] == "customresourcedefinitions":
                obj["status"] = {"conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}],
                    "acceptedNames": obj.get("spec", {}).get("names", {})}
            store.objects[key] = obj
            store.record(r["resource"], "ADDED", obj, None)
            answer = copy.deepcopy(obj)
        self.send_json(201, answer)

    def do_PUT(self):
        r, _ = self.route()
        if r is None or not r["name"]:
            return self.send_json(405, status_body(405, "MethodNotAllowed", "the server does not allow this method on the requested resource"))
        obj = self.read_body()
        store = self.store
        kind = qualified(r["resource"], r["group"])
        with store.lock:
            key = (r["resource"], r["ns"], r["name"])
            current = store.objects.get(key)
            if current is None:
                return self.not_found(r)
            wanted = obj.get("metadata", {}).get("resourceVersion", "")
            if wanted and wanted != current["metadata"]["resourceVersion"]:
                return self.send_json(409, status_body(
                    409, "Conflict",
                    'Operation cannot be fulfilled on %s "%s": the object has been modified; please '
                    'apply your changes to the latest version and try again' % (kind, r["name"]),
                    dict({"name": r["name"]}, **({"group": r["group"]} if r["group"] else {}), kind=r["resource"])))
            updated = copy.deepcopy(current)
            if r["sub"] == "status":
                updated["status"] = obj.get("status", {})
            else:
                for field in obj:
                    if field not in ("metadata", "status") or r["resource"] not in STATUS_SUBRESOURCE:
                        updated[field] = obj[field]
                for field in ("labels", "annotations"):
                    if field in obj.get("metadata", {}):
                        updated["metadata"][field] = obj["metadata"][field]
                if r["resource"] not in STATUS_SUBRESOURCE and "status" in obj:
                    updated["status"] = obj["status"]
                if "generation" in updated["metadata"] and updated.get("spec") != current.get("spec"):
                    updated["metadata"]["generation"] += 1
            updated["metadata"]["uid"] = current["metadata"]["uid"]
            updated["metadata"]["creationTimestamp"] = current["metadata"]["creationTimestamp"]
            if updated == current:  # A no-op update keeps the version, as etcd3 storage does.
                return self.send_json(200, copy.deepcopy(current))
            store.rv += 1
            updated["metadata"]["resourceVersion"] = str(store.rv)
            store.objects[key] = updated
            store.record(r["resource"], "MODIFIED", updated, current)
            answer = copy.deepcopy(updated)
        self.send_json(200, answer)

    def do_DELETE(self):
        r, _ = self.route()
        if r is None or not r["name"]:
            return self.send_json(405, status_body(405, "MethodNotAllowed", "the server does not allow this method on the requested resource"))
        self.read_body()
        store = self.store
        with store.lock:
            key = (r["resource"], r["ns"], r["name"])
            current = store.objects.pop(key, None)
            if current is None:
                return self.not_found(r)
            # Cascading deletion of a Job's pods (the garbage collector's work).
            if r["resource"] == "jobs":
                uid = current["metadata"]["uid"]
                for other in [k for k, o in store.objects.items() if any(
                        ref.get("uid") == uid for ref in o["metadata"].get("ownerReferences", []))]:
                    dependent = store.objects.pop(other)
                    store.rv += 1
                    dependent["metadata"]["resourceVersion"] = str(store.rv)
                    store.record(other[0], "DELETED", dependent, dependent)
            store.rv += 1
            deleted = copy.deepcopy(current)
            deleted["metadata"]["resourceVersion"] = str(store.rv)
            store.record(r["resource"], "DELETED", deleted, current)
        self.send_json(200, deleted)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", required=True, help="written with the port once listening")
    parser.add_argument("--history", type=int, default=1000, help="watch events kept")
    parser.add_argument("--bookmark-interval", type=float, default=1.0)
    args = parser.parse_args()
    Handler.store = Store(args.history)
    Handler.bookmark_interval = args.bookmark_interval
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.rename(args.port_file + ".tmp", args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
