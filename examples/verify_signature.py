"""Verifies that a request came through the ingress guard (ORIGIN_SIGNING_SECRET; README
"Signed origin"). Python >= 3.8, standard library only. Call `verify_guard_request` before
trusting any x-guard-* or x-request-* header; `headers` is any mapping with lowercase or
case-insensitive keys (Flask's request.headers, Django's request.headers, a dict):

    seen = SeenRequests()
    check = verify_guard_request(request.method, request.full_path_as_received, request.headers,
                                 secrets=[os.environ["ORIGIN_SIGNING_SECRET"]], seen=seen)
    if not check["ok"]:
        abort(401)

`path` is the path and query exactly as received (the request target), e.g. "/v1/x?a=1".

Run as a script, it reads {"secrets", "now", "method", "path", "headers"} as JSON on stdin and
prints the result as JSON (the cross-language test uses this).
"""
import hashlib
import hmac
import json
import re
import sys
import time
from collections import OrderedDict

DEFAULT_WINDOW_MS = 60_000
_SIGNATURE = re.compile(r"^v1=([0-9a-f]{64})$")
_TIMESTAMP = re.compile(r"^[0-9]{1,16}$")


class SeenRequests:
    """Request ids seen inside the window, bounded: when full, the oldest is forgotten and every
    timestamp up to its own is refused from then on, so a forgotten id can never be replayed."""

    def __init__(self, max_entries=100_000, window_ms=DEFAULT_WINDOW_MS):
        self.max_entries = max_entries
        self.window_ms = window_ms
        self._ids = OrderedDict()
        self._floor = 0

    def remember(self, request_id, timestamp, now):
        while self._ids:
            oldest_id, oldest_at = next(iter(self._ids.items()))
            if oldest_at >= now - self.window_ms:
                break
            del self._ids[oldest_id]
        if timestamp <= self._floor or request_id in self._ids:
            return False
        if len(self._ids) >= self.max_entries:
            _, oldest_at = self._ids.popitem(last=False)
            self._floor = max(self._floor, oldest_at)
            if timestamp <= self._floor:
                return False
        self._ids[request_id] = timestamp
        return True


def canonical_string(timestamp, request_id, tenant, priority, deadline, method, path):
    return "\n".join(["v1", timestamp, request_id, tenant, priority, deadline, method, path])


def verify_guard_request(method, path, headers, secrets, now=None, window_ms=DEFAULT_WINDOW_MS, seen=None):
    now = int(time.time() * 1000) if now is None else now
    signature = _SIGNATURE.match(headers.get("x-guard-signature") or "")
    timestamp = headers.get("x-guard-timestamp")
    fields = [
        timestamp,
        headers.get("x-guard-request-id"),
        headers.get("x-guard-tenant"),
        headers.get("x-guard-priority"),
        headers.get("x-request-deadline"),
        method,
        path,
    ]
    if not signature or any(not isinstance(value, str) for value in fields):
        return {"ok": False, "reason": "unsigned"}
    if not _TIMESTAMP.match(timestamp):
        return {"ok": False, "reason": "bad_timestamp"}
    payload = canonical_string(*fields).encode()
    given = signature.group(1)
    valid = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
        valid = hmac.compare_digest(expected, given) or valid
    if not valid:
        return {"ok": False, "reason": "bad_signature"}
    at = int(timestamp)
    if abs(now - at) > window_ms:
        return {"ok": False, "reason": "stale"}
    if seen is not None and not seen.remember(fields[1], at, now):
        return {"ok": False, "reason": "replayed"}
    return {"ok": True, "tenant": fields[2], "priority": fields[3], "request_id": fields[1], "deadline": int(fields[4])}


if __name__ == "__main__":
    given = json.load(sys.stdin)
    headers = {name.lower(): value for name, value in given["headers"].items()}
    result = verify_guard_request(given["method"], given["path"], headers, given["secrets"], now=given["now"])
    print(json.dumps(result))
